// A tiny element builder. Text is always set as text (never parsed as HTML).

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  // `ariaLabel` as a property is not in every engine: mirror it to the attribute.
  const label = (props as { ariaLabel?: string }).ariaLabel;
  if (label) node.setAttribute("aria-label", label);
  node.append(...children);
  return node;
}

export function field(label: string, control: HTMLElement): HTMLLabelElement {
  return el("label", {}, el("span", {}, label), control);
}
