// Live figures (book_ext/live_figures.py): each range control picks one value of its grid; the
// frame shown is the one drawn in advance for that combination. No library, nothing off-site.
"use strict";
document.querySelectorAll(".nqm-live").forEach((figure) => {
  const image = figure.querySelector("img.nqm-live-frame");
  const link = figure.querySelector("a.nqm-live-link");
  const inputs = Array.from(figure.querySelectorAll("input[type=range]"));
  const frames = new Map();
  const url = (index) => `${figure.dataset.base}${index}.png`;
  const load = (index) => {
    if (!frames.has(index)) {
      const frame = new Image();
      frame.src = url(index);
      frames.set(index, frame.decode().then(() => frame, () => frame));
    }
    return frames.get(index);
  };
  const index = () => inputs.reduce((sum, input) => sum + Number(input.value) * Number(input.dataset.stride), 0);
  const neighbours = () => {
    // Frames one step away from the current one along each control: the next ones shown.
    const current = index();
    inputs.forEach((input) => {
      const position = Number(input.value);
      if (position > 0) load(current - Number(input.dataset.stride));
      if (position < Number(input.max)) load(current + Number(input.dataset.stride));
    });
  };
  const update = (event) => {
    const start = performance.now();
    const input = event.target;
    const text = JSON.parse(input.dataset.values)[Number(input.value)];
    input.setAttribute("aria-valuetext", text);
    input.nextElementSibling.textContent = text;
    const wanted = index();
    load(wanted).then((frame) => {
      if (wanted !== index()) return; // a later move wins
      image.src = frame.src;
      link.href = frame.src;
      figure.dataset.frame = String(wanted);
      requestAnimationFrame(() => {
        figure.dataset.redrawMs = (performance.now() - start).toFixed(1);
        figure.dispatchEvent(new CustomEvent("nqm-live-redraw"));
      });
      neighbours();
    });
  };
  inputs.forEach((input) => input.addEventListener("input", update));
  neighbours();
});
