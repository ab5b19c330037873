import { describe, expect, it } from "vitest";
import { CANVAS_FPS, CANVAS_HEIGHT, CANVAS_WIDTH, MAX_DRAW_SHARE, TILE_ASPECT, bestColumns, fitContain, gridCells, inset, labelFontSize, layoutCall, nextDrawDelay, type Rect } from "./compositor";

const canvas: Rect = { x: 0, y: 0, w: CANVAS_WIDTH, h: CANVAS_HEIGHT };

function inside(r: Rect, box: Rect): boolean {
  return r.x >= box.x - 1e-6 && r.y >= box.y - 1e-6 && r.x + r.w <= box.x + box.w + 1e-6 && r.y + r.h <= box.y + box.h + 1e-6;
}

function overlap(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function expectAspect(r: Rect, aspect: number, tolerance = 0.01): void {
  expect(Math.abs(r.w / r.h - aspect) / aspect).toBeLessThan(tolerance);
}

describe("fitContain", () => {
  it("letterboxes a wide picture and pillarboxes a tall one, centred", () => {
    const box = { x: 10, y: 20, w: 400, h: 400 };
    expect(fitContain(1280, 720, box)).toEqual({ x: 10, y: 20 + (400 - 225) / 2, w: 400, h: 225 });
    expect(fitContain(480, 640, box)).toEqual({ x: 10 + (400 - 300) / 2, y: 20, w: 300, h: 400 });
  });

  it("keeps the source aspect ratio and stays inside the box", () => {
    for (const [w, h] of [[640, 480], [1920, 1080], [1080, 1920], [333, 777], [1, 1]]) {
      const r = fitContain(w, h, canvas);
      expect(inside(r, canvas)).toBe(true);
      expectAspect(r, w / h, 1e-9);
      // It touches two opposite sides: as large as possible.
      expect(r.w === canvas.w || r.h === canvas.h).toBe(true);
    }
  });

  it("fills the box when the source has no size yet", () => {
    expect(fitContain(0, 0, canvas)).toEqual(canvas);
    expect(fitContain(640, 0, canvas)).toEqual(canvas);
  });
});

describe("gridCells", () => {
  it("puts one tile over the whole 1280x720 canvas", () => {
    expect(gridCells(1, canvas)).toEqual([{ x: 0, y: 0, w: 1280, h: 720 }]);
  });

  it("puts two tiles side by side and four in a 2x2 grid", () => {
    expect(bestColumns(2, canvas)).toBe(2);
    expect(bestColumns(3, canvas)).toBe(2);
    expect(bestColumns(4, canvas)).toBe(2);
    expect(bestColumns(5, canvas)).toBe(3);
    expect(bestColumns(9, canvas)).toBe(3);
    const four = gridCells(4, canvas);
    expect(four.map((r) => [r.x, r.y, r.w, r.h])).toEqual([
      [0, 0, 640, 360],
      [640, 0, 640, 360],
      [0, 360, 640, 360],
      [640, 360, 640, 360],
    ]);
  });

  it("centres a short last row", () => {
    const three = gridCells(3, canvas);
    expect(three[2].x).toBe((1280 - three[2].w) / 2);
    expect(three[0].y).toBe(three[1].y);
    expect(three[2].y).toBeGreaterThan(three[0].y);
  });

  it("returns nothing for no tiles", () => {
    expect(gridCells(0, canvas)).toEqual([]);
  });
});

describe("layoutCall", () => {
  const area = inset(canvas, 8);

  it("fits 1 to 12 tiles inside 1280x720, 16:9, without overlap, in order", () => {
    for (let n = 1; n <= 12; n++) {
      const { screen, tiles } = layoutCall(n, false);
      expect(screen).toBeNull();
      expect(tiles).toHaveLength(n);
      for (const [i, r] of tiles.entries()) {
        expect(inside(r, area)).toBe(true);
        expectAspect(r, TILE_ASPECT);
        expect(r.w).toBeGreaterThan(100);
        for (const other of tiles.slice(i + 1)) expect(overlap(r, other)).toBe(false);
        // Reading order: left to right, then top to bottom.
        if (i > 0) {
          const prev = tiles[i - 1];
          expect(r.y > prev.y || (r.y === prev.y && r.x > prev.x)).toBe(true);
        }
      }
      // As large as a grid of 16:9 cells allows: 1 nearly fills the canvas, 2 to 4 get
      // half its width each, up to 9 a third, up to 12 a quarter.
      const minWidth = n === 1 ? 1240 : n <= 4 ? 610 : n <= 9 ? 400 : 300;
      for (const r of tiles) expect(r.w).toBeGreaterThanOrEqual(minWidth);
    }
  });

  it("keeps whole pixels so video frames are drawn crisp", () => {
    for (let n = 1; n <= 8; n++) {
      for (const r of layoutCall(n, false).tiles) for (const v of [r.x, r.y, r.w, r.h]) expect(Number.isInteger(v)).toBe(true);
    }
  });

  it("makes a shared screen large, with the tiles in a strip beside it", () => {
    for (let n = 1; n <= 8; n++) {
      const { screen, tiles } = layoutCall(n, true);
      expect(screen).not.toBeNull();
      const s = screen as Rect;
      expect(inside(s, area)).toBe(true);
      expect(s.w).toBeGreaterThanOrEqual(1280 * 0.7);
      expect(s.h).toBe(area.h);
      // A 16:9 screen fitted into its box is far larger than any tile.
      const picture = fitContain(1920, 1080, s);
      expect(picture.w).toBeGreaterThanOrEqual(900);
      expectAspect(picture, 16 / 9, 1e-9);
      expect(tiles).toHaveLength(n);
      for (const [i, r] of tiles.entries()) {
        expect(inside(r, area)).toBe(true);
        expect(overlap(r, s)).toBe(false);
        expect(r.x).toBeGreaterThanOrEqual(s.x + s.w);
        expectAspect(r, TILE_ASPECT);
        expect(r.w * r.h * 4).toBeLessThan(picture.w * picture.h);
        for (const other of tiles.slice(i + 1)) expect(overlap(r, other)).toBe(false);
      }
    }
  });

  it("gives a screen alone the whole canvas", () => {
    const { screen, tiles } = layoutCall(0, true);
    expect(screen).toEqual(area);
    expect(tiles).toEqual([]);
  });

  it("follows other canvas sizes", () => {
    const box = inset({ x: 0, y: 0, w: 640, h: 360 }, 4);
    for (let n = 1; n <= 6; n++) for (const r of layoutCall(n, false, { width: 640, height: 360, gap: 4 }).tiles) expect(inside(r, box)).toBe(true);
  });
});

describe("labelFontSize", () => {
  it("scales with the cell within readable bounds", () => {
    expect(labelFontSize({ x: 0, y: 0, w: 1280, h: 720 })).toBe(28);
    expect(labelFontSize({ x: 0, y: 0, w: 632, h: 356 })).toBe(28);
    expect(labelFontSize({ x: 0, y: 0, w: 300, h: 169 })).toBe(14);
    expect(labelFontSize({ x: 0, y: 0, w: 100, h: 56 })).toBe(11);
  });
});

describe("nextDrawDelay", () => {
  it("keeps the frame rate while drawing is cheap", () => {
    expect(nextDrawDelay(0)).toBeCloseTo(1000 / CANVAS_FPS);
    expect(nextDrawDelay(5)).toBeCloseTo(1000 / CANVAS_FPS - 5);
    expect(nextDrawDelay(4, 25)).toBeCloseTo(36);
  });

  it("lowers the frame rate so drawing takes at most its share of the time", () => {
    for (const cost of [20, 40, 140, 1000]) {
      const wait = nextDrawDelay(cost);
      expect(cost / (cost + wait)).toBeLessThanOrEqual(MAX_DRAW_SHARE + 1e-9);
      expect(cost + wait).toBeGreaterThanOrEqual(1000 / CANVAS_FPS);
    }
    expect(nextDrawDelay(40)).toBeCloseTo(40);
    expect(nextDrawDelay(30, 30, 0.25)).toBeCloseTo(90);
  });

  it("treats a nonsense cost as free", () => {
    expect(nextDrawDelay(Number.NaN)).toBeCloseTo(1000 / CANVAS_FPS);
    expect(nextDrawDelay(-5)).toBeCloseTo(1000 / CANVAS_FPS);
  });
});
