// Layout maths for recording the whole call: where each tile goes on the recording
// canvas. Pure (no DOM), so it is unit-tested; recording.ts does the drawing.
//
// Without a shared screen the tiles form a grid of equal 16:9 cells, as large as the
// canvas allows, centred, with a short last row centred too. With a shared screen the
// screen takes the left three quarters and the tiles a grid in the strip on the right.

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The recording canvas. */
export const CANVAS_WIDTH = 1280;
export const CANVAS_HEIGHT = 720;
export const CANVAS_FPS = 30;

/**
 * Most of the page's main thread the drawing may take. Without a GPU (many kiosks, CI,
 * some laptops) drawing video frames on a canvas is done in software and costs tens of
 * ms a frame: at full rate it would starve the call page, its buttons included.
 */
export const MAX_DRAW_SHARE = 0.5;

/**
 * How long to wait before the next frame is drawn, in ms, when drawing one costs `cost`
 * ms: the frame interval at `fps` while drawing is cheap, and longer when it is not, so
 * drawing takes at most `share` of the time (the recording's frame rate drops instead).
 */
export function nextDrawDelay(cost: number, fps = CANVAS_FPS, share = MAX_DRAW_SHARE): number {
  const c = Number.isFinite(cost) && cost > 0 ? cost : 0;
  return Math.max(1000 / fps - c, (c * (1 - share)) / share, 0);
}

/** Cells are 16:9, like the cameras the call asks for. */
export const TILE_ASPECT = 16 / 9;

export interface LayoutOptions {
  width?: number;
  height?: number;
  /** Space between cells and around the edges, in pixels. */
  gap?: number;
  /** Share of the width the tile strip gets next to a shared screen. */
  stripFraction?: number;
  aspect?: number;
}

export interface CallLayout {
  /** Where the shared screen goes (its picture is fitted inside), or null. */
  screen: Rect | null;
  /** One cell per tile, in the order given. */
  tiles: Rect[];
}

/** The largest rect of `srcW:srcH` that fits in `box`, centred. A size of 0 fills the box. */
export function fitContain(srcW: number, srcH: number, box: Rect): Rect {
  if (!(srcW > 0) || !(srcH > 0)) return { ...box };
  const scale = Math.min(box.w / srcW, box.h / srcH);
  const w = srcW * scale;
  const h = srcH * scale;
  return { x: box.x + (box.w - w) / 2, y: box.y + (box.h - h) / 2, w, h };
}

/** `box` shrunk by `by` on every side. */
export function inset(box: Rect, by: number): Rect {
  return { x: box.x + by, y: box.y + by, w: Math.max(0, box.w - 2 * by), h: Math.max(0, box.h - 2 * by) };
}

/** Columns for `n` cells of `aspect` in `box` that make the cells largest (more columns on a tie: side by side suits a landscape canvas). */
export function bestColumns(n: number, box: Rect, aspect = TILE_ASPECT, gap = 0): number {
  let best = 1;
  let bestW = -1;
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const w = cellWidth(cols, rows, box, aspect, gap);
    if (w > bestW - 1e-9) {
      bestW = w;
      best = cols;
    }
  }
  return best;
}

function cellWidth(cols: number, rows: number, box: Rect, aspect: number, gap: number): number {
  const maxW = (box.w - gap * (cols - 1)) / cols;
  const maxH = (box.h - gap * (rows - 1)) / rows;
  return Math.max(0, Math.min(maxW, maxH * aspect));
}

/** `n` equal cells of `aspect` in a grid filling `box` as far as possible, centred. */
export function gridCells(n: number, box: Rect, aspect = TILE_ASPECT, gap = 0): Rect[] {
  if (n <= 0) return [];
  const cols = bestColumns(n, box, aspect, gap);
  const rows = Math.ceil(n / cols);
  const w = Math.floor(cellWidth(cols, rows, box, aspect, gap));
  const h = Math.floor(w / aspect);
  const blockH = rows * h + (rows - 1) * gap;
  const top = box.y + Math.floor((box.h - blockH) / 2);
  const cells: Rect[] = [];
  for (let row = 0; row < rows; row++) {
    const inRow = Math.min(cols, n - row * cols);
    const rowW = inRow * w + (inRow - 1) * gap;
    const left = box.x + Math.floor((box.w - rowW) / 2);
    for (let col = 0; col < inRow; col++) cells.push({ x: left + col * (w + gap), y: top + row * (h + gap), w, h });
  }
  return cells;
}

/** Where `tiles` camera tiles (and a shared screen, if any) go on the canvas. */
export function layoutCall(tiles: number, hasScreen: boolean, opts: LayoutOptions = {}): CallLayout {
  const width = opts.width ?? CANVAS_WIDTH;
  const height = opts.height ?? CANVAS_HEIGHT;
  const gap = opts.gap ?? 8;
  const aspect = opts.aspect ?? TILE_ASPECT;
  const area = inset({ x: 0, y: 0, w: width, h: height }, gap);
  if (!hasScreen) return { screen: null, tiles: gridCells(tiles, area, aspect, gap) };
  if (tiles <= 0) return { screen: area, tiles: [] };
  const stripW = Math.round(width * (opts.stripFraction ?? 0.25));
  const screen: Rect = { x: area.x, y: area.y, w: area.w - stripW - gap, h: area.h };
  const strip: Rect = { x: screen.x + screen.w + gap, y: area.y, w: stripW, h: area.h };
  return { screen, tiles: gridCells(tiles, strip, aspect, gap) };
}

/** A name label's font size for a cell: readable, never larger than the cell allows. */
export function labelFontSize(cell: Rect): number {
  return Math.max(11, Math.min(28, Math.round(cell.h / 12)));
}
