// Live figures (book_ext/live_figures.py): each control picks one value of its grid — a range
// input, radio buttons, a set of check boxes or a switch — and the frame shown is the one drawn
// in advance for that combination (a 1x and a 2x image). No library, nothing off-site.
"use strict";
document.querySelectorAll(".nqm-live").forEach((figure) => {
  const image = figure.querySelector("img.nqm-live-frame");
  const link = figure.querySelector("a.nqm-live-link");
  const controls = Array.from(figure.querySelectorAll(".nqm-live-control"));
  const frames = new Map();
  const base = figure.dataset.base;
  const sources = (index) => ({src: `${base}${index}.png`, srcset: `${base}${index}@2x.png 2x`});
  const load = (index) => {
    if (!frames.has(index)) {
      const frame = new Image();
      Object.assign(frame, sources(index));
      frames.set(index, frame.decode().then(() => frame, () => frame));
    }
    return frames.get(index);
  };
  const checked = (control) =>
    Array.from(control.querySelectorAll("input:checked")).map((input) => Number(input.value));
  // The grid position a control's inputs stand for (-1: a combination the site has no frame for).
  const position = (control, values = checked(control)) => {
    const kind = control.dataset.kind;
    if (kind === "range") return Number(control.querySelector("input").value);
    if (kind === "choice") return values[0];
    if (kind === "switch") return Number(values.length ? control.dataset.on : control.dataset.off);
    const key = JSON.stringify(values.sort((a, b) => a - b));
    return JSON.parse(control.dataset.subsets).findIndex((subset) => JSON.stringify(subset) === key);
  };
  const text = (control) => JSON.parse(control.dataset.texts)[position(control)];
  const index = () => controls.reduce((sum, c) => sum + position(c) * Number(c.dataset.stride), 0);
  const settings = () => {
    const setting = (label, value) => (value.startsWith(`${label} =`) ? value : `${label} = ${value}`);
    const live = controls.map((c) => setting(c.dataset.label, text(c)));
    return [...live, ...(figure.dataset.fixed ? [figure.dataset.fixed] : [])].join(", ");
  };
  // Grid positions one move away on a control: its neighbours on a range, the other options of
  // radio buttons or a switch, each box toggled in a set (if the site drew that set).
  const reachable = (control) => {
    const here = position(control);
    const count = JSON.parse(control.dataset.texts).length;
    if (control.dataset.kind === "range") return [here - 1, here + 1].filter((p) => p >= 0 && p < count);
    if (control.dataset.kind !== "set") return [...Array(count).keys()].filter((p) => p !== here);
    const values = checked(control);
    return Array.from(control.querySelectorAll("input"))
      .map((box) => Number(box.value))
      .map((v) => position(control, values.includes(v) ? values.filter((x) => x !== v) : [...values, v]))
      .filter((p) => p >= 0);
  };
  // Load the frames one move away, so that the next move shows its frame at once.
  const neighbours = () => {
    const current = index();
    controls.forEach((control) => {
      const here = position(control);
      reachable(control).forEach((p) => load(current + (p - here) * Number(control.dataset.stride)));
    });
  };
  const update = (event) => {
    const start = performance.now();
    const control = event.target.closest(".nqm-live-control");
    if (control.dataset.kind === "range") {
      const input = control.querySelector("input");
      input.setAttribute("aria-valuetext", text(control));
      control.querySelector("output").textContent = text(control);
    }
    const wanted = index();
    load(wanted).then((frame) => {
      if (wanted !== index()) return; // a later move wins
      Object.assign(image, sources(wanted));
      image.alt = `${figure.dataset.alt}. Settings: ${settings()}.`;
      link.href = `${base}${wanted}@2x.png`;
      figure.dataset.frame = String(wanted);
      requestAnimationFrame(() => {
        figure.dataset.redrawMs = (performance.now() - start).toFixed(1);
        figure.dispatchEvent(new CustomEvent("nqm-live-redraw"));
      });
      neighbours();
    });
  };
  controls.forEach((control) => {
    control.addEventListener(control.dataset.kind === "range" ? "input" : "change", update);
    if (control.dataset.kind !== "set") return;
    // A set of check boxes: refuse a click that would make a combination without a frame.
    control.addEventListener("click", (event) => {
      const box = event.target.closest("input[type=checkbox]");
      if (!box) return;
      const hint = control.querySelector(".nqm-live-hint");
      if (position(control) >= 0) {
        hint.textContent = "";
        return;
      }
      event.preventDefault();
      hint.textContent = checked(control).length ? "not drawn for the site" : "keep at least one";
    });
  });
  // The frames one move away are loaded once the figure comes within a screen's height of the
  // window, where a reader is about to move it, and after every move. Loading them for every
  // figure with the page decoded a few dozen frames a reader might never see (at 2x, most of the
  // CPU a chapter's live figures cost on a phone).
  if ("IntersectionObserver" in window) {
    const near = new IntersectionObserver(
      (entries) => {
        if (!entries.some((entry) => entry.isIntersecting)) return;
        near.disconnect();
        neighbours();
      },
      {rootMargin: "100% 0px"},
    );
    near.observe(figure);
  } else {
    neighbours();
  }
});
