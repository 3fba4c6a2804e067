// Figures open enlarged in the page (book_ext/figure_links.py): a click or tap on a figure opens
// it in an overlay that zooms (buttons, pinch, Ctrl + wheel, double click) and pans (scroll or
// drag); Esc, a click outside the image or the close button closes it. The full-size PNG stays
// one link away, in the overlay (a Ctrl/Cmd click on a figure still opens it directly).
"use strict";
(() => {
  const FIGURES = "a.figure-full-size, a.nqm-live-link";
  const STEP = 1.5;
  const LARGEST = 6;
  let dialog, view, image, full, scale = 1, fitted = 1;

  const build = () => {
    dialog = document.createElement("dialog");
    dialog.className = "nqm-zoom";
    dialog.setAttribute("aria-label", "Enlarged figure");
    dialog.innerHTML = `
      <div class="nqm-zoom-bar">
        <button type="button" data-zoom="out" aria-label="Zoom out" title="Zoom out">−</button>
        <button type="button" data-zoom="fit" aria-label="Fit to the window" title="Fit to the window">fit</button>
        <button type="button" data-zoom="in" aria-label="Zoom in" title="Zoom in">+</button>
        <a class="nqm-zoom-full" href="">full-size PNG</a>
        <button type="button" class="nqm-zoom-close" aria-label="Close" title="Close (Esc)" autofocus>×</button>
      </div>
      <div class="nqm-zoom-view"><img alt=""></div>`;
    document.body.append(dialog);
    view = dialog.querySelector(".nqm-zoom-view");
    image = view.querySelector("img");
    full = dialog.querySelector(".nqm-zoom-full");
    dialog.querySelector(".nqm-zoom-close").addEventListener("click", () => dialog.close());
    dialog.querySelectorAll("[data-zoom]").forEach((button) =>
      button.addEventListener("click", () => {
        const how = button.dataset.zoom;
        zoom(how === "fit" ? fitted : how === "in" ? scale * STEP : scale / STEP);
      }),
    );
    // A click outside the image (on the backdrop or the empty view) closes the overlay.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog || event.target === view) dialog.close();
    });
    image.addEventListener("dblclick", (event) => zoom(scale > fitted * 1.01 ? fitted : fitted * 2, event));
    view.addEventListener("wheel", (event) => {
      if (!event.ctrlKey) return; // a plain wheel scrolls; Ctrl + wheel (and trackpad pinch) zooms
      event.preventDefault();
      zoom(scale * Math.exp(-event.deltaY / 300), event);
    }, {passive: false});
    pinch();
    image.addEventListener("load", () => {
      fitted = fit();
      zoom(fitted);
    });
  };

  // The scale at which the whole image fits the view (at most its natural CSS size).
  const fit = () => {
    const width = Number(image.dataset.width) || image.naturalWidth;
    const height = Number(image.dataset.height) || image.naturalHeight;
    return Math.min(1, (view.clientWidth - 16) / width, (view.clientHeight - 16) / height);
  };

  // Zoom to ``next`` (clamped), keeping the point under the pointer (or the centre) in place.
  const zoom = (next, at) => {
    const width = Number(image.dataset.width) || image.naturalWidth;
    next = Math.min(LARGEST, Math.max(Math.min(fitted, 1) / 2, next));
    const box = view.getBoundingClientRect();
    const x = at && at.clientX !== undefined ? at.clientX - box.left : view.clientWidth / 2;
    const y = at && at.clientY !== undefined ? at.clientY - box.top : view.clientHeight / 2;
    const ratio = next / scale;
    const left = (view.scrollLeft + x) * ratio - x;
    const top = (view.scrollTop + y) * ratio - y;
    scale = next;
    image.style.width = `${Math.round(width * scale)}px`;
    view.scrollTo(left, top);
    dialog.dataset.scale = scale.toFixed(3);
  };

  // Two fingers on the view zoom; one finger pans (the view scrolls natively).
  const pinch = () => {
    const pointers = new Map();
    let start = null;
    const distance = () => {
      const [a, b] = Array.from(pointers.values());
      return Math.hypot(a.clientX - b.clientX, a.clientY - b.clientY);
    };
    view.addEventListener("pointerdown", (event) => {
      pointers.set(event.pointerId, event);
      if (pointers.size === 2) start = {distance: distance(), scale};
    });
    view.addEventListener("pointermove", (event) => {
      if (!pointers.has(event.pointerId)) return;
      pointers.set(event.pointerId, event);
      if (pointers.size === 2 && start) {
        const [a, b] = Array.from(pointers.values());
        const middle = {clientX: (a.clientX + b.clientX) / 2, clientY: (a.clientY + b.clientY) / 2};
        zoom(start.scale * (distance() / start.distance), middle);
      }
    });
    const end = (event) => {
      pointers.delete(event.pointerId);
      if (pointers.size < 2) start = null;
    };
    ["pointerup", "pointercancel", "pointerleave"].forEach((type) => view.addEventListener(type, end));
  };

  const open = (link) => {
    if (!dialog) build();
    const shown = link.querySelector("img");
    image.dataset.width = shown.getAttribute("width") || "";
    image.dataset.height = shown.getAttribute("height") || "";
    image.alt = shown.alt;
    image.style.width = "";
    scale = 1;
    image.src = link.href;
    full.href = link.href;
    dialog.showModal();
    if (image.complete && image.naturalWidth) {
      fitted = fit();
      zoom(fitted);
    }
  };

  document.addEventListener("click", (event) => {
    const link = event.target.closest(FIGURES);
    if (!link || !link.querySelector("img")) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    open(link);
  });
})();
