/* svg.c - standalone, searchable and zoomable SVG flamegraphs (single and differential)
 *
 * Both renderers reduce their input to one list of boxes {parent, depth, weight, name,
 * tooltip, colour} in parent-before-child order, lay them out (a box starts where its
 * previous sibling ended, inside its parent), and write one SVG with an inline script in
 * the spirit of Brendan Gregg's flamegraph.pl: root at the bottom, hover shows details,
 * click zooms into a frame (ancestors stretch to full width, everything else hides),
 * "Reset Zoom" undoes it, "Search" takes a regular expression, highlights matching frames
 * and shows the matched share of the total (nested matches counted once). Nothing external
 * is referenced, so the file works opened straight from disk.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/flamegraph.h"
#include "base/hash.h"

#define FRAME_H 16
#define FONT_PX 12
#define XPAD 10
#define TOP_PAD 50
#define BOTTOM_PAD 34

struct box {
    uint32_t parent; /* box index, UINT32_MAX for roots */
    uint32_t depth;
    uint64_t weight;
    double x;           /* in weight units from the left edge */
    struct kl_str name; /* label */
    char tip[160];      /* tooltip after the name */
    unsigned char r, g, b;
};

static void put_xml(struct kl_buf *b, struct kl_str s)
{
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        const char *rep = NULL;
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            if (c < 0x20)
                rep = "?"; /* not allowed in XML 1.0 */
        }
        if (rep) {
            kl_buf_append(b, s.ptr + start, i - start);
            kl_buf_puts(b, rep);
            start = i + 1;
        }
    }
    kl_buf_append(b, s.ptr + start, s.len - start);
}

static const char SCRIPT[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "'use strict';\n"
    "var fr, det, unz, mt, W, FW, items = [], zoomed = null, total = 0;\n"
    "function q(g, t) { return g.getElementsByTagName(t)[0]; }\n"
    "function init() {\n"
    "  W = +document.documentElement.getAttribute('width'); FW = W - 2 * 10;\n"
    "  fr = document.getElementById('frames'); det = document.getElementById('details');\n"
    "  unz = document.getElementById('unzoom'); mt = document.getElementById('matched');\n"
    "  var gs = fr.getElementsByTagName('g');\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i], r = q(g, 'rect');\n"
    "    g._x = +r.getAttribute('x'); g._w = +r.getAttribute('width');\n"
    "    g._d = +g.getAttribute('data-d'); g._fill = r.getAttribute('fill');\n"
    "    if (g._d === 0) total += g._w;\n"
    "    items.push(g); fit(g);\n"
    "  }\n"
    "  fr.addEventListener('click', function (e) { var g = up(e.target); if (g) zoom(g); });\n"
    "  fr.addEventListener('mouseover', function (e) { var g = up(e.target);\n"
    "    if (g) det.textContent = q(g, 'title').textContent; });\n"
    "  fr.addEventListener('mouseout', function () { det.textContent = ' '; });\n"
    "  unz.addEventListener('click', unzoom);\n"
    "  document.getElementById('search').addEventListener('click', search);\n"
    "  document.addEventListener('keydown', function (e) {\n"
    "    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); search(); }\n"
    "    else if (e.key === 'Escape') { reset_search(); }\n"
    "  });\n"
    "}\n"
    "function up(n) { while (n && n.getAttribute && n.getAttribute('class') !== 'f')\n"
    "  n = n.parentNode; return n && n.getAttribute ? n : null; }\n"
    "function fit(g) {\n"
    "  var r = q(g, 'rect'), t = q(g, 'text'), w = +r.getAttribute('width');\n"
    "  var n = g.getAttribute('data-n'), max = Math.floor((w - 6) / 7);\n"
    "  t.setAttribute('x', +r.getAttribute('x') + 3);\n"
    "  t.textContent = max < 3 ? '' : (n.length <= max ? n : n.substring(0, max - 2) + '..');\n"
    "}\n"
    "function place(g, x, w, show) {\n"
    "  var r = q(g, 'rect'); r.setAttribute('x', x); r.setAttribute('width', w);\n"
    "  g.style.display = show && w >= 0.1 ? '' : 'none'; fit(g);\n"
    "}\n"
    "function zoom(z) {\n"
    "  var x0 = z._x, w0 = z._w, d0 = z._d, s = FW / w0, eps = 1e-6;\n"
    "  zoomed = z; unz.style.opacity = '1';\n"
    "  for (var i = 0; i < items.length; i++) {\n"
    "    var g = items[i];\n"
    "    if (g._d < d0) {\n"
    "      var anc = g._x <= x0 + eps && g._x + g._w >= x0 + w0 - eps;\n"
    "      place(g, 10, FW, anc); g.style.opacity = anc ? '0.6' : '';\n"
    "    } else {\n"
    "      var inside = g._x >= x0 - eps && g._x + g._w <= x0 + w0 + eps;\n"
    "      place(g, 10 + (g._x - x0) * s, g._w * s, inside); g.style.opacity = '';\n"
    "    }\n"
    "  }\n"
    "}\n"
    "function unzoom() {\n"
    "  zoomed = null; unz.style.opacity = '0';\n"
    "  for (var i = 0; i < items.length; i++) {\n"
    "    var g = items[i]; place(g, g._x, g._w, true); g.style.opacity = '';\n"
    "  }\n"
    "}\n"
    "function reset_search() {\n"
    "  for (var i = 0; i < items.length; i++) q(items[i], 'rect').setAttribute('fill', "
    "items[i]._fill);\n"
    "  mt.textContent = ' ';\n"
    "}\n"
    "function search() {\n"
    "  var term = window.prompt('Search for a frame (regular expression)', '');\n"
    "  if (term === null) return;\n"
    "  reset_search(); if (term === '') return;\n"
    "  var re; try { re = new RegExp(term); } catch (e) { mt.textContent = 'bad expression'; "
    "return; }\n"
    "  var iv = [];\n"
    "  for (var i = 0; i < items.length; i++) {\n"
    "    var g = items[i];\n"
    "    if (re.test(g.getAttribute('data-n'))) {\n"
    "      q(g, 'rect').setAttribute('fill', 'rgb(230,0,230)'); iv.push([g._x, g._x + g._w]);\n"
    "    }\n"
    "  }\n"
    "  iv.sort(function (a, b) { return a[0] - b[0]; });\n"
    "  var sum = 0, end = -1;\n"
    "  for (var j = 0; j < iv.length; j++) {\n"
    "    var a = Math.max(iv[j][0], end);\n"
    "    if (iv[j][1] > a) { sum += iv[j][1] - a; end = iv[j][1]; }\n"
    "  }\n"
    "  mt.textContent = 'Matched: ' + (total > 0 ? (100 * sum / total).toFixed(1) : '0.0') + '%';\n"
    "}\n"
    "]]></script>\n";

static const char STYLE[] =
    "<style type=\"text/css\">\n"
    "text { font-family: Verdana, sans-serif; font-size: 12px; fill: rgb(0,0,0); }\n"
    "#title { font-size: 17px; text-anchor: middle; }\n"
    ".btn { cursor: pointer; } .btn:hover { text-decoration: underline; }\n"
    "#unzoom { opacity: 0; }\n"
    ".f { cursor: pointer; } .f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
    ".f text { pointer-events: none; }\n"
    "</style>\n";

/* boxes are in parent-before-child order; x is assigned here */
static int render(const char *title, struct box *bx, uint32_t n, uint32_t width_px, double min_w,
                  struct kl_buf *out, struct kl_err *err)
{
    if (!width_px)
        width_px = 1200;
    if (width_px < 2 * XPAD + 10)
        width_px = 2 * XPAD + 10;
    if (min_w <= 0)
        min_w = 0.1;
    double *cursor = kl_xmalloc(((size_t)n + 1) * sizeof *cursor);
    double root_cursor = 0;
    uint64_t total = 0;
    uint32_t maxd = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (bx[i].parent == UINT32_MAX) {
            bx[i].x = root_cursor;
            root_cursor += (double)bx[i].weight;
            total += bx[i].weight;
        } else {
            bx[i].x = cursor[bx[i].parent];
            cursor[bx[i].parent] += (double)bx[i].weight;
        }
        cursor[i] = bx[i].x;
    }
    double fw = width_px - 2.0 * XPAD;
    double scale = total ? fw / (double)total : 0;
    for (uint32_t i = 0; i < n; i++)
        if ((double)bx[i].weight * scale >= min_w && bx[i].depth > maxd)
            maxd = bx[i].depth;
    unsigned height = TOP_PAD + BOTTOM_PAD + (maxd + 1) * FRAME_H;

    kl_buf_puts(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n");
    kl_buf_printf(out,
                  "<svg version=\"1.1\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
                  "onload=\"init(evt)\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                  width_px, height, width_px, height);
    kl_buf_puts(out, STYLE);
    kl_buf_puts(out, SCRIPT);
    kl_buf_printf(out,
                  "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"rgb(248,248,240)\"/>\n",
                  width_px, height);
    kl_buf_printf(out, "<text id=\"title\" x=\"%u\" y=\"24\">", width_px / 2);
    put_xml(out, kl_str_c(title));
    kl_buf_puts(out, "</text>\n");
    kl_buf_printf(out, "<text id=\"unzoom\" class=\"btn\" x=\"%d\" y=\"24\">Reset Zoom</text>\n",
                  XPAD);
    kl_buf_printf(out, "<text id=\"search\" class=\"btn\" x=\"%u\" y=\"24\">Search</text>\n",
                  width_px - XPAD - 60);
    kl_buf_printf(out, "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n", XPAD, height - 12);
    kl_buf_printf(out, "<text id=\"matched\" x=\"%u\" y=\"%u\"> </text>\n", width_px - XPAD - 140,
                  height - 12);
    kl_buf_puts(out, "<g id=\"frames\">\n");
    for (uint32_t i = 0; i < n && !kl_err_is_set(&out->err); i++) {
        const struct box *b = &bx[i];
        double w = (double)b->weight * scale;
        if (w < min_w)
            continue;
        double x = XPAD + b->x * scale;
        unsigned y = height - BOTTOM_PAD - (b->depth + 1) * FRAME_H;
        kl_buf_printf(out, "<g class=\"f\" data-d=\"%u\" data-n=\"", b->depth);
        put_xml(out, b->name);
        kl_buf_puts(out, "\"><title>");
        put_xml(out, b->name);
        put_xml(out, kl_str_c(b->tip));
        kl_buf_printf(out,
                      "</title><rect x=\"%.2f\" y=\"%u\" width=\"%.2f\" height=\"%d\" "
                      "fill=\"rgb(%u,%u,%u)\" rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%u\">",
                      x, y, w, FRAME_H - 1, b->r, b->g, b->b, x + 3, y + FRAME_H - 4);
        /* the script refits labels; write a first fit so the file reads without script */
        int max = (int)((w - 6) / 7);
        if (max >= 3) {
            if (b->name.len <= (size_t)max) {
                put_xml(out, b->name);
            } else {
                size_t cut = (size_t)max - 2;
                while (cut > 0 && ((unsigned char)b->name.ptr[cut] & 0xC0) == 0x80)
                    cut--; /* do not split a UTF-8 sequence */
                put_xml(out, kl_str_make(b->name.ptr, cut));
                kl_buf_puts(out, "..");
            }
        }
        kl_buf_puts(out, "</text></g>\n");
    }
    kl_buf_puts(out, "</g>\n</svg>\n");
    free(cursor);
    if (kl_err_is_set(&out->err)) {
        if (err && !kl_err_is_set(err))
            *err = out->err;
        return -1;
    }
    return 0;
}

static struct kl_str label_of(struct kl_str name)
{
    return name.len ? name : KL_STR("unknown");
}

static void fmt_weight(char *dst, size_t cap, enum kl_fg_weight w, uint64_t v)
{
    if (w == KL_FG_WEIGHT_NS)
        snprintf(dst, cap, "%.3f ms", (double)v / 1e6);
    else
        snprintf(dst, cap, "%" PRIu64 " samples", v);
}

int kl_flamegraph_write_svg(const struct kl_flamegraph *fg, const struct kl_fg_svg_opts *o,
                            struct kl_buf *out, struct kl_err *err)
{
    static const struct kl_fg_svg_opts defaults = {0};
    if (!o)
        o = &defaults;
    uint32_t n = kl_flamegraph_n_nodes(fg);
    struct box *bx = kl_xcalloc((size_t)n + 1, sizeof *bx);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct kl_fg_node nd;
        kl_flamegraph_node(fg, i, &nd);
        if (nd.parent == KL_FG_ROOT)
            total += o->weight == KL_FG_WEIGHT_NS ? nd.duration_ns : nd.sample_count;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct kl_fg_node nd;
        kl_flamegraph_node(fg, i, &nd);
        const struct kl_fg_frame *f = kl_flamegraph_frame(fg, nd.frame);
        struct box *b = &bx[i];
        b->parent = nd.parent == KL_FG_ROOT ? UINT32_MAX : nd.parent;
        b->depth = nd.depth;
        b->weight = o->weight == KL_FG_WEIGHT_NS ? nd.duration_ns : nd.sample_count;
        b->name = label_of(f->name);
        char wbuf[48];
        fmt_weight(wbuf, sizeof wbuf, o->weight, b->weight);
        snprintf(b->tip, sizeof b->tip, "%s%.*s%s: %s (%.2f%%)", f->package.len ? " (" : "",
                 (int)(f->package.len > 60 ? 60 : f->package.len),
                 f->package.ptr ? f->package.ptr : "", f->package.len ? ")" : "", wbuf,
                 total ? 100.0 * (double)b->weight / (double)total : 0.0);
        /* flamegraph.pl's "hot" palette for application frames, a sand one for the rest;
         * the hash keeps a frame's colour stable across renders */
        uint64_t h = kl_fnv1a64(f->name.ptr ? f->name.ptr : "", f->name.len);
        double v1 = (double)(h & 0xff) / 255.0, v2 = (double)((h >> 8) & 0xff) / 255.0,
               v3 = (double)((h >> 16) & 0xff) / 255.0;
        if (f->flags & KL_CFRAME_APPLICATION) {
            b->r = (unsigned char)(205 + 50 * v3);
            b->g = (unsigned char)(230 * v1);
            b->b = (unsigned char)(55 * v2);
        } else {
            b->r = (unsigned char)(190 + 40 * v1);
            b->g = (unsigned char)(180 + 40 * v1);
            b->b = (unsigned char)(120 + 50 * v2);
        }
    }
    int rc =
        render(o->title ? o->title : "Flame Graph", bx, n, o->width_px, o->min_width_px, out, err);
    free(bx);
    return rc;
}

int kl_fg_diff_write_svg(const struct kl_fg_diff *d, const struct kl_fg_svg_opts *o,
                         bool widths_by_a, struct kl_buf *out, struct kl_err *err)
{
    static const struct kl_fg_svg_opts defaults = {0};
    if (!o)
        o = &defaults;
    uint32_t n = kl_fg_diff_n_nodes(d);
    struct box *bx = kl_xcalloc((size_t)n + 1, sizeof *bx);
    for (uint32_t i = 0; i < n; i++) {
        struct kl_fg_diff_node x;
        kl_fg_diff_node(d, i, &x);
        struct box *b = &bx[i];
        b->parent = x.parent == KL_FG_ROOT ? UINT32_MAX : x.parent;
        b->depth = x.depth;
        b->weight = widths_by_a ? x.a : x.b;
        b->name = label_of(x.name);
        /* change of the frame's share of its side's total, relative to the larger share:
         * -1 (gone) .. 0 (same) .. +1 (new) */
        double hi = x.share_a > x.share_b ? x.share_a : x.share_b;
        double rel = hi > 0 ? (x.share_b - x.share_a) / hi : 0;
        double m = fabs(rel) > 1 ? 1 : fabs(rel);
        unsigned char fade = (unsigned char)(250 - 210 * m);
        if (rel > 0) {
            b->r = 255;
            b->g = b->b = fade;
        } else if (rel < 0) {
            b->r = b->g = fade;
            b->b = 255;
        } else {
            b->r = b->g = b->b = 250;
        }
        char wa[48], wb[48], ch[32];
        fmt_weight(wa, sizeof wa, o->weight, x.a);
        fmt_weight(wb, sizeof wb, o->weight, x.b);
        if (isnan(x.rel_change))
            snprintf(ch, sizeof ch, "new");
        else
            snprintf(ch, sizeof ch, "%+.2f%%", 100 * x.rel_change);
        snprintf(b->tip, sizeof b->tip, ": A %s (%.2f%%), B %s (%.2f%%), change %s", wa,
                 100 * x.share_a, wb, 100 * x.share_b, ch);
    }
    int rc = render(o->title ? o->title : "Differential Flame Graph", bx, n, o->width_px,
                    o->min_width_px, out, err);
    free(bx);
    return rc;
}
