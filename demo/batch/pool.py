"""Worker processes for `tinyzoo classify`, each with its own pipe and a task or two in hand.

Why not multiprocessing.Pool: when a worker dies (SIGTERM to the process group, the OOM killer,
a decoder crash) Pool replaces it and waits forever for the lost task; and Pool.imap reads the
whole task list ahead. Here a dead worker is seen at once (its pipe closes), the tasks it held
are known: the running one is split and run again by a fresh worker, and at most IN_FLIGHT
tasks per worker are out.
"""
import itertools
import signal
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
IN_FLIGHT = 2  # tasks sent to one worker at a time
_END = object()


@dataclass(frozen=True)
class Died:
    """The result of a task that can't be split further and killed its worker."""
    exitcode: int  # negative: the signal that killed it

    def reason(self) -> str:
        if self.exitcode < 0:
            return f"killed by {signal.Signals(-self.exitcode).name}"
        return f"exited with status {self.exitcode}"


def serve(conn, parent_end, work) -> None:
    """A worker's loop: task in, result out, until the parent closes the pipe."""
    parent_end.close()  # inherited by the fork: held open here, the parent's close would never reach us
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    queued = deque()
    try:
        while True:
            task = queued.popleft() if queued else conn.recv()
            try:
                reply = ("ok", work(task))
            except Exception as e:  # a bug or a model that won't load: the parent raises it
                e.add_note(f"in a worker process:\n{traceback.format_exc()}")
                reply = ("raised", e)
            while conn.poll():  # take the next task before answering: both sides never wait on full pipes
                queued.append(conn.recv())
            conn.send(reply)
    except (EOFError, OSError):  # the parent closed the pipe (done, or stopping)
        return


class Worker:
    def __init__(self, context, work):
        self.conn, child = context.Pipe()
        # signals blocked across the fork: the child must not run the parent's handlers
        # before serve() has set its own
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self.process = context.Process(target=serve, args=(child, self.conn, work), daemon=True)
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()

    def exitcode(self) -> int:
        self.process.join(5)
        return self.process.exitcode if self.process.exitcode is not None else -signal.SIGKILL


class WorkerPool:
    def __init__(self, size: int, work, context):
        self.work, self.context, self.workers = work, context, []
        try:
            for _ in range(size):
                self.workers.append(Worker(context, work))
        except OSError:  # out of processes or file descriptors: the ones started go, not left waiting
            self.close(kill=True)
            raise

    def imap(self, tasks, split):
        """-> (task, result) in task order. A task whose worker died is run again as split(task)
        (smaller tasks); one that split() can't divide ([]) gets Died as its result."""
        self.tasks, self.keys, self.more = iter(tasks), itertools.count(), True
        self.todo, self.order, self.results = deque(), deque(), {}
        self.busy = {worker: deque() for worker in self.workers}  # tasks sent, oldest (the running one) first
        while True:
            self.hand_out()
            while self.order and self.order[0] in self.results:
                yield self.results.pop(self.order.popleft())
            if not any(self.busy.values()):
                return
            self.collect(split)

    def hand_out(self) -> None:
        """Tasks to the least busy workers, up to IN_FLIGHT each (the next one waits in the pipe:
        no idle gap while the parent writes rows)."""
        while True:
            worker = min(self.workers, key=lambda w: len(self.busy[w]))
            if len(self.busy[worker]) >= IN_FLIGHT or not self.refill():
                return
            self.busy[worker].append(self.todo.popleft())
            worker.conn.send(self.busy[worker][-1][1])

    def refill(self) -> bool:
        """-> whether a task is ready: a retried part first, else the next task."""
        if not self.todo and self.more:
            task = next(self.tasks, _END)
            self.more = task is not _END
            if self.more:
                key = (next(self.keys),)
                self.order.append(key)
                self.todo.append((key, task))
        return bool(self.todo)

    def collect(self, split) -> None:
        for conn in wait([w.conn for w, sent in self.busy.items() if sent]):
            worker = next(w for w in self.workers if w.conn is conn)
            try:
                status, payload = conn.recv()
            except (EOFError, OSError):
                self.lost(worker, split)
                continue
            if status == "raised":
                raise payload
            key, task = self.busy[worker].popleft()
            self.results[key] = (task, payload)

    def lost(self, worker: Worker, split) -> None:
        """A worker died: the task it was running is split and run again (or given Died when it
        can't be split); the ones waiting in its pipe go back to the front of the queue."""
        died = Died(worker.exitcode())
        (key, task), *waiting = self.busy.pop(worker)
        self.replace(worker)
        self.todo.extendleft(reversed(waiting))
        parts = split(task)
        if not parts:
            self.results[key] = (task, died)
            return
        subkeys = [key + (i,) for i in range(len(parts))]
        at = self.order.index(key)
        self.order.remove(key)
        for offset, subkey in enumerate(subkeys):
            self.order.insert(at + offset, subkey)
        self.todo.extendleft(reversed(list(zip(subkeys, parts))))

    def replace(self, dead: Worker) -> None:
        """A fresh worker for a dead one (forked now, after the parent's model session exists:
        it only runs in the rare case of a crash, and the child never touches that session)."""
        dead.conn.close()
        fresh = Worker(self.context, self.work)
        self.workers[self.workers.index(dead)] = fresh
        self.busy[fresh] = deque()

    def close(self, kill: bool = False) -> None:
        """End the workers: closed pipes let idle ones exit; kill for a stop right now."""
        for worker in self.workers:
            if kill:
                worker.process.kill()
            worker.conn.close()
        for worker in self.workers:
            worker.process.join(5)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
