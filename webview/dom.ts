/**
 * Small DOM helpers. Text goes in through `textContent` only: client names, module names and
 * labels come from peers and must never be parsed as HTML.
 */
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { VscodeSingleSelect } from '@vscode-elements/elements/dist/vscode-single-select/index.js';

/** Creates an element with attributes (set as attributes, not HTML) and text or child nodes. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return node;
}

/** Sets an element's text (a text node; no HTML parsing). */
export function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** One option of a select. */
export interface SelectOption {
  readonly value: string;
  readonly label: string;
}

/**
 * Replaces a vscode-single-select's options when they changed (keeping an open dropdown alone
 * otherwise) and selects `value`.
 */
export function setOptions(select: VscodeSingleSelect, options: readonly SelectOption[], value: string): void {
  const signature = JSON.stringify(options);
  if (select.dataset.options !== signature) {
    select.dataset.options = signature;
    select.replaceChildren(...options.map((o) => {
      const option = document.createElement('vscode-option');
      option.value = o.value;
      option.textContent = o.label;
      if (o.value === value) option.selected = true;
      return option;
    }));
  }
  if (select.value !== value && options.some((o) => o.value === value)) select.value = value;
}
