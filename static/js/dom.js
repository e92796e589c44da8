// dom.js — the one way this page builds DOM: elements holding text, never HTML.
//
// Contract: el(tag, props, ...children) returns a new element. String and number children
// become text nodes, so a name, a parameter or a log line can never turn into markup; null,
// undefined and false children are skipped. props may hold:
//   class    the class name          text     the text content
//   attrs    {name: value} set as attributes (true → present, false/null → absent)
//   dataset  {key: value}            on       {event: handler}
// and any other key is set as a property (type, value, disabled, hidden, title, href...).
// "innerHTML"/"outerHTML" properties, on* attributes and "style" are refused outright: handlers
// go through `on`, and the page's Content-Security-Policy forbids inline style anyway.

const FORBIDDEN_PROPERTIES = new Set(["innerHTML", "outerHTML", "srcdoc"]);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "attrs") setAttributes(node, value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (FORBIDDEN_PROPERTIES.has(key)) {
      throw new Error(`el(): ${key} is not allowed; build the DOM from elements and text`);
    } else node[key] = value;
  }
  append(node, children);
  return node;
}

export function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    const lower = name.toLowerCase();
    if (lower.startsWith("on") || lower === "style" || lower === "srcdoc") {
      throw new Error(`el(): attribute ${name} is not allowed`);
    }
    if (value === false || value === null || value === undefined) node.removeAttribute(name);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

/** Append children (nodes, or anything else as text) to node. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** The element matching selector; a missing one is a bug in index.html, so say which. */
export function $(selector, root = document) {
  const node = root.querySelector(selector);
  if (!node) throw new Error(`the page has no element matching ${selector}`);
  return node;
}

/** Replace node's content with the given children (none: empty it). */
export function replaceContent(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}
