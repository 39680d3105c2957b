// Colour arithmetic of the charts: parsing VS Code's colour values, the heatmap scales' end points
// and midpoints, and stable series styles.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { contrast, diverging, mix, parseColor, seriesStyle, sequential, toCss } from '../../webview/colors.js';

describe('colours', () => {
  test('parses the forms theme variables use', () => {
    assert.deepEqual(parseColor('#3794ff'), { r: 0x37, g: 0x94, b: 0xff, a: 1 });
    assert.deepEqual(parseColor(' #FFF '), { r: 255, g: 255, b: 255, a: 1 });
    assert.deepEqual(parseColor('#00000080'), { r: 0, g: 0, b: 0, a: 128 / 255 });
    assert.deepEqual(parseColor('rgba(204, 204, 204, 0.5)'), { r: 204, g: 204, b: 204, a: 0.5 });
    assert.deepEqual(parseColor('rgb(1 2 3 / 50%)'), { r: 1, g: 2, b: 3, a: 0.5 });
    for (const bad of ['', 'red', '#12', '#1234567', 'hsl(0, 0%, 0%)', 'rgb(1, 2)']) assert.equal(parseColor(bad), null, bad);
    assert.equal(toCss({ r: 10.4, g: 20.6, b: 30, a: 0.5 }, 0.5), 'rgba(10, 21, 30, 0.25)');
  });

  test('heatmap scales: ends are the given colours, zero is the background, null stays null', () => {
    const neg = parseColor('#0000ff')!;
    const mid = parseColor('#1f1f1f')!;
    const pos = parseColor('#ff0000')!;
    assert.deepEqual(diverging(-2, 2, neg, mid, pos), neg);
    assert.deepEqual(diverging(5, 2, neg, mid, pos), pos, 'clamped');
    assert.deepEqual(diverging(0, 2, neg, mid, pos), mid);
    assert.equal(diverging(null, 2, neg, mid, pos), null);
    assert.equal(diverging(Number.NaN, 2, neg, mid, pos), null);
    assert.deepEqual(sequential(0, 4, mid, pos), mid);
    assert.deepEqual(sequential(4, 4, mid, pos), pos);
    assert.deepEqual(sequential(1, 4, mid, pos), mix(mid, pos, 0.25), 'linear');
    assert.deepEqual(diverging(0.5, 2, neg, mid, pos), mix(mid, pos, 0.5), '√ stretch of signed values: a quarter of the range is half way');
  });

  test('contrast and series styles', () => {
    assert.ok(Math.abs(contrast(parseColor('#000')!, parseColor('#fff')!) - 21) < 1e-9);
    assert.deepEqual(seriesStyle('method:fedex', 9), { color: 'blue', dash: [6, 3] });
    assert.deepEqual(seriesStyle('type:mlp', 0), { color: 'red', dash: [] });
    assert.deepEqual(seriesStyle('client:x', 1), { color: 'orange', dash: [] });
    assert.deepEqual(seriesStyle('client:y', 7), { color: 'orange', dash: [4, 3] }, 'second cycle is dashed');
    assert.equal(seriesStyle('__proto__', 0).color, 'blue');
  });
});
