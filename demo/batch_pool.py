"""Worker processes for `tinyzoo classify`, each with its own pipe and one task in hand.

Why not multiprocessing.Pool: when a worker dies (SIGTERM to the process group, the OOM killer,
a decoder crash) Pool replaces it and waits forever for the lost task; and Pool.imap reads the
whole task list ahead. Here a dead worker is seen at once (its pipe closes), the one task it
held is known, split and run again by a fresh worker, and only one task per worker is in flight.
"""
import itertools
import signal
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
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
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", work(task))
        except Exception as e:  # a bug or a model that won't load: the parent raises it
            e.add_note(f"in a worker process:\n{traceback.format_exc()}")
            reply = ("raised", e)
        try:
            conn.send(reply)
        except OSError:  # the parent is gone or stopping: nothing to report to
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
        self.work, self.context = work, context
        self.workers = [Worker(context, work) for _ in range(size)]

    def imap(self, tasks, split):
        """-> (task, result) in task order. A task whose worker died is run again as split(task)
        (smaller tasks); one that split() can't divide ([]) gets Died as its result."""
        self.tasks, self.keys, self.more = iter(tasks), itertools.count(), True
        self.todo, self.order, self.results, self.busy = deque(), deque(), {}, {}
        while True:
            self.hand_out()
            while self.order and self.order[0] in self.results:
                yield self.results.pop(self.order.popleft())
            if not self.busy:
                return
            self.collect(split)

    def hand_out(self) -> None:
        """One task to each idle worker: a retried part first, else the next task."""
        for worker in [w for w in self.workers if w not in self.busy]:
            if not self.todo and self.more:
                task = next(self.tasks, _END)
                self.more = task is not _END
                if self.more:
                    key = (next(self.keys),)
                    self.order.append(key)
                    self.todo.append((key, task))
            if not self.todo:
                return
            self.busy[worker] = self.todo.popleft()
            worker.conn.send(self.busy[worker][1])

    def collect(self, split) -> None:
        for conn in wait([w.conn for w in self.busy]):
            worker = next(w for w in self.busy if w.conn is conn)
            key, task = self.busy.pop(worker)
            try:
                status, payload = conn.recv()
            except (EOFError, OSError):
                died = Died(worker.exitcode())
                self.replace(worker)
                self.requeue(key, task, split(task), died)
                continue
            if status == "raised":
                raise payload
            self.results[key] = (task, payload)

    def requeue(self, key, task, parts, died: Died) -> None:
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
        self.workers[self.workers.index(dead)] = Worker(self.context, self.work)

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
