// The Digits pad (gr.HTML js_on_load: `element`, `props`, `trigger` come from Gradio).
// Pen strokes are kept as points; each update re-draws them, cropped to the digit, with a stroke
// width relative to the digit's size (MNIST's pen is ~1/8 of the digit's height), into a small
// grey PNG: one ~1 KB payload per update, whatever size the pad is shown at or the digit is drawn.
const THROTTLE_MS = 200;      // while drawing: at most one update per 200 ms (plus one at pen-up)
const PEN_OF_EXTENT = 0.12;   // sent stroke width as a fraction of the digit's longer side
const SEND_SIDE = 96;         // the sent PNG: the digit's longer side fills 80 of these pixels
const SEND_EXTENT = 80;
const SHOWN_PEN = 1 / 26;     // the pen on screen, as a fraction of the pad's side

const canvas = element.querySelector("canvas");
const hint = element.querySelector(".pad-hint");
const screen = canvas.getContext("2d");
let strokes = [];  // [[[x, y], ...], ...] as fractions of the pad's side
let drawing = null;
let lastSent = 0;
let pending = null;

function paint(ctx, list, toPixel, width, colour) {
  ctx.strokeStyle = ctx.fillStyle = colour;
  ctx.lineWidth = width;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const stroke of list) {
    const points = stroke.map(toPixel);
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    if (points.length === 1) ctx.arc(points[0][0], points[0][1], width / 2, 0, 2 * Math.PI);
    for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
    points.length === 1 ? ctx.fill() : ctx.stroke();
  }
}

function showStrokes() {
  const side = canvas.width;
  screen.fillStyle = "#fff";
  screen.fillRect(0, 0, side, side);
  paint(screen, strokes, ([x, y]) => [x * side, y * side], Math.max(3, side * SHOWN_PEN), "#111");
  hint.hidden = strokes.length > 0;
}

function payload() {
  if (!strokes.length) return "";
  const all = strokes.flat();
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const [left, top] = [Math.min(...xs), Math.min(...ys)];
  const extent = Math.max(Math.max(...xs) - left, Math.max(...ys) - top, 1e-3);
  const scale = SEND_EXTENT / extent;
  const [dx, dy] = [(SEND_SIDE - (Math.max(...xs) - left) * scale) / 2, (SEND_SIDE - (Math.max(...ys) - top) * scale) / 2];
  const out = document.createElement("canvas");
  out.width = out.height = SEND_SIDE;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, SEND_SIDE, SEND_SIDE);
  paint(ctx, strokes, ([x, y]) => [(x - left) * scale + dx, (y - top) * scale + dy], SEND_EXTENT * PEN_OF_EXTENT, "#fff");
  return out.toDataURL("image/png");
}

function send(finished = null) {  // finished: "release" at pen-up, "clear" on Clear (a whole drawing)
  clearTimeout(pending);
  pending = null;
  if (!window.tinyzooReady) return;  // the app can't take events yet: sent once it can (below)
  lastSent = performance.now();
  props.value = payload();
  trigger("input");
  if (finished) trigger(finished);  // what is too heavy to follow every stroke (Look inside) listens to these
}

function sendSoon() {  // throttle: leading edge, then at most one per THROTTLE_MS
  const wait = THROTTLE_MS - (performance.now() - lastSent);
  if (wait <= 0) send();
  else if (!pending) pending = setTimeout(send, wait);
}

function at(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawing = [at(event)];
  strokes.push(drawing);
  showStrokes();
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  for (const e of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) drawing.push(at(e));
  showStrokes();
  sendSoon();
});
const penUp = () => {
  if (!drawing) return;
  drawing = null;
  send("release");
};
canvas.addEventListener("pointerup", penUp);
canvas.addEventListener("pointercancel", penUp);
element.querySelector(".pad-clear").addEventListener("click", () => {
  strokes = [];
  showStrokes();
  send("clear");
});
showStrokes();
function ready() {  // listeners attached and the app taking events: strokes from here on are answered
  canvas.dataset.ready = "1";  // (tests wait for this)
  if (strokes.length) send("release");  // drawn before the app was ready
}
if (window.tinyzooReady) ready();
else document.addEventListener("tinyzoo:ready", ready, {once: true});
