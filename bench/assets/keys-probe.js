const canvas = document.querySelector(arguments[0]);
const ctx2d = canvas.getContext('2d');
window.__keys = []; window.__draws = [];
const lit = () => { const d = ctx2d.getImageData(0, 0, canvas.width, canvas.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 64 || d[i + 1] > 64 || d[i + 2] > 64) n++; return n; };
for (const name of ['putImageData', 'fillRect', 'drawImage']) {
  const orig = CanvasRenderingContext2D.prototype[name];
  CanvasRenderingContext2D.prototype[name] = function (...a) {
    const r = orig.apply(this, a);
    if (this === ctx2d) { const t = performance.now(); window.__draws.push([t, lit()]); }
    return r;
  };
}
canvas.addEventListener('keydown', () => window.__keys.push(performance.now()), true);
window.__lit = lit;
return true;
