// What every page of the web view uses.
'use strict';

// An element with attributes and text (never HTML: what the API says is
// shown as text).
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
  if (text !== undefined) e.textContent = text;
  return e;
}
