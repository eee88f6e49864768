// What the dream shows on the canvas: a decoded frame (pixel models), or for vector models the observation as bars,
// a plot of its last steps, and for envs that have one (CartPole) a sketch drawn from it.

const COLORS = ["#2a62c9", "#c9472a", "#2a9d4b", "#8a2ac9", "#c9a12a", "#2ab5c9", "#c92a84", "#555555"];
const SKETCH_H = 140;
const BAR_H = 24;
const PLOT_H = 140;
const HISTORY = 150;

export class PixelView {
  constructor(canvas, shape) {
    [this.h, this.w] = shape;
    this.canvas = canvas;
    this.canvas.width = 384;
    this.canvas.height = Math.round((384 * this.h) / this.w);
    this.ctx = canvas.getContext("2d");
    this.ctx.imageSmoothingEnabled = false;
    this.small = document.createElement("canvas");
    this.small.width = this.w;
    this.small.height = this.h;
    this.smallCtx = this.small.getContext("2d");
    this.image = this.smallCtx.createImageData(this.w, this.h);
  }

  reset() {}

  draw(obs) {
    const px = this.image.data;
    for (let i = 0, j = 0; i < this.w * this.h; i++, j += 3) {
      px[4 * i] = obs[j];
      px[4 * i + 1] = obs[j + 1];
      px[4 * i + 2] = obs[j + 2];
      px[4 * i + 3] = 255;
    }
    this.smallCtx.putImageData(this.image, 0, 0);
    this.ctx.drawImage(this.small, 0, 0, this.canvas.width, this.canvas.height);
  }
}

export class VectorView {
  constructor(canvas, observation) {
    this.canvas = canvas;
    this.labels = observation.labels;
    this.scale = observation.scale;
    this.sketch = observation.sketch;
    this.n = this.labels.length;
    this.top = this.sketch ? SKETCH_H : 0;
    canvas.width = 384;
    canvas.height = this.top + this.n * BAR_H + 8 + PLOT_H;
    this.ctx = canvas.getContext("2d");
    this.history = [];
  }

  reset() {
    this.history = [];
  }

  draw(obs) {
    const values = Array.from(obs);
    this.history.push(values);
    if (this.history.length > HISTORY) this.history.shift();
    const ctx = this.ctx;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.sketch === "cartpole") this.drawCartPole(values);
    this.drawBars(values, this.top);
    this.drawPlot(this.top + this.n * BAR_H + 8);
  }

  drawBars(values, y0) {
    const ctx = this.ctx;
    const left = 150;
    const width = this.canvas.width - left - 60;
    const mid = left + width / 2;
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    values.forEach((v, i) => {
      const y = y0 + i * BAR_H;
      const frac = Math.max(-1, Math.min(1, v / this.scale[i]));
      ctx.fillStyle = "#333";
      ctx.textAlign = "left";
      ctx.fillText(this.labels[i], 4, y + BAR_H / 2);
      ctx.fillStyle = "#eee";
      ctx.fillRect(left, y + 4, width, BAR_H - 8);
      ctx.fillStyle = COLORS[i % COLORS.length];
      const x = frac >= 0 ? mid : mid + frac * (width / 2);
      ctx.fillRect(x, y + 4, Math.abs(frac) * (width / 2), BAR_H - 8);
      ctx.fillStyle = "#000";
      ctx.fillRect(mid, y + 2, 1, BAR_H - 4);
      ctx.textAlign = "right";
      ctx.fillText(v.toFixed(3), this.canvas.width - 4, y + BAR_H / 2);
    });
  }

  drawPlot(y0) {
    const ctx = this.ctx;
    const w = this.canvas.width;
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(0.5, y0 + 0.5, w - 1, PLOT_H - 1);
    ctx.beginPath();
    ctx.moveTo(0, y0 + PLOT_H / 2);
    ctx.lineTo(w, y0 + PLOT_H / 2);
    ctx.stroke();
    for (let i = 0; i < this.n; i++) {
      ctx.strokeStyle = COLORS[i % COLORS.length];
      ctx.beginPath();
      this.history.forEach((values, k) => {
        const frac = Math.max(-1, Math.min(1, values[i] / this.scale[i]));
        const x = (k / (HISTORY - 1)) * (w - 1);
        const y = y0 + PLOT_H / 2 - frac * (PLOT_H / 2 - 4);
        if (k === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
    }
    ctx.fillStyle = "#666";
    ctx.textAlign = "left";
    ctx.fillText(`last ${HISTORY} steps (each line scaled to its bar)`, 4, y0 + 10);
  }

  // Gymnasium's CartPole picture from (x, x_dot, theta, theta_dot): track, cart, pole (1.0 long), 4.8 wide world.
  drawCartPole(values) {
    const ctx = this.ctx;
    const w = this.canvas.width;
    const scale = w / 4.8;
    const trackY = SKETCH_H - 30;
    const cx = w / 2 + values[0] * scale;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, trackY, w, 1);
    ctx.fillRect(cx - 25, trackY - 15, 50, 30);
    const len = scale * 1.0;
    const theta = values[2];
    ctx.strokeStyle = "rgb(202,152,101)";
    ctx.lineWidth = 10;
    ctx.beginPath();
    ctx.moveTo(cx, trackY - 10);
    ctx.lineTo(cx + len * Math.sin(theta), trackY - 10 - len * Math.cos(theta));
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.fillStyle = "rgb(129,132,203)";
    ctx.beginPath();
    ctx.arc(cx, trackY - 10, 5, 0, 2 * Math.PI);
    ctx.fill();
  }
}
