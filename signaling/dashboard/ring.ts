/**
 * The ring as a picture: peers on a circle in ring order, an arrow from
 * each to the next one it sends to; filled by kind (Node process or
 * browser tab), hollow and dashed while a place waits for its peer.
 */
import type { PeerStatus } from '../../shared/signaling-protocol.ts';
import { svg } from './dom.ts';
import { short } from '../../shared/format.ts';

// Wider than tall: labels of the peers on the left and right need room.
const WIDTH = 340;
const HEIGHT = 300;
const CX = WIDTH / 2;
const CY = HEIGHT / 2;
const RADIUS = 95;
/** Above this many peers the ring is drawn without arrows and labels. */
const MAX_ARROWS = 24;
const MAX_LABELS = 16;

/** Kind colours, shared with the peer table's badges. */
export const KIND_COLOR = { node: '#2563eb', browser: '#ea580c' } as const;

/** An SVG of the ring; `colorOf` gives each peer's chart colour. */
export function ringPicture(
  peers: readonly PeerStatus[],
  colorOf: (id: string) => string,
): SVGSVGElement {
  const picture = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: 'ring',
    role: 'img',
    'aria-label': `ring of ${peers.length} peers`,
  });
  picture.append(
    svg(
      'defs',
      {},
      svg(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 9,
          refY: 5,
          markerWidth: 6,
          markerHeight: 6,
          orient: 'auto-start-reverse',
        },
        svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#9ca3af' }),
      ),
    ),
    svg('circle', {
      cx: CX,
      cy: CY,
      r: RADIUS,
      fill: 'none',
      stroke: '#eef0f3',
      'stroke-width': 10,
    }),
  );
  const count = peers.length;
  if (count === 0) {
    picture.append(
      svg(
        'text',
        { x: CX, y: CY, class: 'ring-empty', 'text-anchor': 'middle' },
        'no peers',
      ),
    );
    return picture;
  }

  // Dots shrink so that neighbours never overlap.
  const dot = Math.min(13, (Math.PI * RADIUS) / count - 1.5);
  const position = (i: number, r = RADIUS) => {
    const angle = (2 * Math.PI * i) / count - Math.PI / 2;
    return { x: CX + r * Math.cos(angle), y: CY + r * Math.sin(angle) };
  };

  // Arrows first, so the dots sit on top of them.
  if (count > 1 && count <= MAX_ARROWS) {
    for (let i = 0; i < count; i++) {
      picture.append(arrow(position(i), position((i + 1) % count), dot, count));
    }
  }
  if (count > MAX_ARROWS) {
    picture.append(
      svg(
        'text',
        { x: CX, y: CY - 4, class: 'ring-count', 'text-anchor': 'middle' },
        `${count} peers`,
      ),
      svg(
        'text',
        { x: CX, y: CY + 14, class: 'ring-sub', 'text-anchor': 'middle' },
        'each sends to the next, clockwise',
      ),
    );
  }
  const labelled = count <= MAX_LABELS;
  peers.forEach((peer, i) => {
    const at = position(i);
    const node = svg(
      'g',
      { class: `ring-peer${peer.connected ? '' : ' waiting'}` },
      svg('title', {}, describe(peer)),
      svg('circle', {
        cx: at.x,
        cy: at.y,
        r: dot,
        fill: peer.connected ? KIND_COLOR[peer.kind] : '#fff',
        stroke: peer.connected ? colorOf(peer.id) : '#9ca3af',
        'stroke-width': dot >= 9 ? (peer.connected ? 3 : 2) : 1.5,
        ...(peer.connected ? {} : { 'stroke-dasharray': '3 2' }),
      }),
    );
    if (dot >= 9) {
      node.append(
        svg(
          'text',
          {
            x: at.x,
            y: at.y + 4,
            'text-anchor': 'middle',
            class: peer.connected ? 'ring-index' : 'ring-index dark',
          },
          String(peer.ringIndex),
        ),
      );
    }
    if (labelled) {
      // Labels sit outside the dot, anchored away from the centre so they
      // never run off the picture.
      const out = position(i, RADIUS + dot + 6);
      const side = out.x - CX;
      const anchor =
        side > RADIUS * 0.3 ? 'start' : side < -RADIUS * 0.3 ? 'end' : 'middle';
      const below = out.y > CY + RADIUS * 0.7;
      const above = out.y < CY - RADIUS * 0.7;
      const y = below ? out.y + 8 : above ? out.y - 12 : out.y - 2;
      node.append(
        svg(
          'text',
          { x: out.x, y, 'text-anchor': anchor, class: 'ring-label' },
          short(peer.id),
        ),
        svg(
          'text',
          { x: out.x, y: y + 11, 'text-anchor': anchor, class: 'ring-sub' },
          // The kind shows in the dot's colour; the text stays short.
          peer.backend,
        ),
      );
    }
    picture.append(node);
  });
  return picture;
}

function arrow(
  from: { x: number; y: number },
  to: { x: number; y: number },
  dot: number,
  count: number,
): SVGPathElement {
  // Shorten both ends by the dot radius so the head touches the dot.
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy) || 1;
  const gap = dot + 3;
  const ux = dx / length;
  const uy = dy / length;
  const start = { x: from.x + ux * gap, y: from.y + uy * gap };
  const end = { x: to.x - ux * gap, y: to.y - uy * gap };
  // Bow to the left of travel, which is outwards on a clockwise ring; two
  // peers get two arcs, one each way.
  const bow = count === 2 ? 45 : Math.min(18, length * 0.15);
  const control = {
    x: (start.x + end.x) / 2 + uy * bow,
    y: (start.y + end.y) / 2 - ux * bow,
  };
  return svg('path', {
    d: `M${start.x},${start.y} Q${control.x},${control.y} ${end.x},${end.y}`,
    fill: 'none',
    stroke: '#9ca3af',
    'stroke-width': 1.5,
    'marker-end': 'url(#arrow)',
  });
}

function describe(peer: PeerStatus): string {
  return (
    `#${peer.ringIndex} ${peer.id}\n${peer.kind}, ${peer.backend}` +
    `${peer.connected ? '' : ' (waiting to rejoin)'}\n` +
    `step ${peer.step ?? '–'}`
  );
}
