// Page layout (book_ext/page_layout.py): mark each display equation that is wider than the text
// column with the sides that have more to see (data-nqm-scroll = left, right or both).
"use strict";
(() => {
  const EQUATIONS = "div.math mjx-container";
  const mark = (box) => {
    const hidden = box.scrollWidth - box.clientWidth;
    if (hidden <= 1) {
      delete box.dataset.nqmScroll;
      return;
    }
    const left = box.scrollLeft > 1;
    const right = box.scrollLeft < hidden - 1;
    box.dataset.nqmScroll = left && right ? "both" : left ? "left" : "right";
  };
  const markAll = () => {
    document.querySelectorAll(EQUATIONS).forEach(mark);
    document.documentElement.dataset.nqmEquations = "marked";
  };
  document.addEventListener("scroll", (event) => {
    if (event.target instanceof Element && event.target.matches(EQUATIONS)) mark(event.target);
  }, true);
  window.addEventListener("resize", markAll);
  window.addEventListener("load", () => {
    const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
    typeset.then(() => document.fonts.ready).then(markAll);
  });
})();
