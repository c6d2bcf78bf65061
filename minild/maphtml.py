"""maphtml: the link map as one self-contained HTML page (--map-format html).

The page draws the layout to scale, three levels deep: the address space
with its loaded segments, each segment with its output sections, and each
output section with the input sections (and their objects) inside it. A box's
left edge and width are its address and size on its parent's scale (the
elements carry data-addr and data-size, and the page's own test checks the
drawn widths against them). Tables give the numbers: addresses, sizes, file
offsets, permissions. Hovering over a box shows its details. Everything is
inline: no network, no script or style from elsewhere.
"""

from __future__ import annotations

import html
import json

WIDTH = 960          # pixels of every bar: a bar's span is drawn across its whole width
PERM_COLORS = {"rx": "#f4a6a0", "r": "#a8d5a2", "rw": "#9ec5f0", "": "#d0d0d0"}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin:28px 0 6px}
.bar{position:relative;width:%dpx;height:34px;background:#f6f6f6;border:1px solid #999;
     margin:4px 0 2px}
.box{position:absolute;top:0;height:100%%;box-sizing:border-box;box-shadow:inset -1px 0 #333;
     overflow:hidden;white-space:nowrap;font-size:11px;padding:0;cursor:default}
.box span{display:block;margin:2px 3px}
.box:hover{outline:2px solid #000;z-index:2}
.scale{width:%dpx;display:flex;justify-content:space-between;font:11px monospace;color:#555}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ccc;padding:2px 8px;
     font:12px monospace;text-align:right} th{background:#eee} td.l{text-align:left}
#tip{position:fixed;display:none;background:#ffffe8;border:1px solid #886;padding:6px 8px;
     font:12px monospace;white-space:pre;pointer-events:none;z-index:10;box-shadow:2px 2px 6px #888}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #999}
""" % (WIDTH, WIDTH)

SCRIPT = """
(function(){
  var tip=document.getElementById('tip');
  document.querySelectorAll('[data-details]').forEach(function(el){
    el.addEventListener('mouseenter',function(){tip.textContent=el.dataset.details;
      tip.style.display='block';});
    el.addEventListener('mousemove',function(ev){tip.style.left=(ev.clientX+14)+'px';
      tip.style.top=(ev.clientY+14)+'px';});
    el.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
})();
"""


def _perm(p: str) -> str:
    return {"rx": "r-x", "r": "r--", "rw": "rw-", "": "not loaded"}.get(p, p)


def _box(kind: str, label: str, addr: int, size: int, base: int, span: int, color: str,
         details: str) -> str:
    left = (addr - base) / span * WIDTH if span else 0
    width = size / span * WIDTH if span else 0
    return (f'<div class="box {kind}" style="left:{left:.3f}px;width:{width:.3f}px;'
            f'background:{color}" data-addr="{addr}" data-size="{size}" '
            f'data-name="{html.escape(label)}" title="{html.escape(details)}" '
            f'data-details="{html.escape(details)}"><span>{html.escape(label)}</span></div>')


def _bar(cls: str, base: int, span: int, boxes: list[str], name: str) -> str:
    return (f'<div class="bar {cls}" data-base="{base}" data-span="{span}" '
            f'data-name="{html.escape(name)}">{"".join(boxes)}</div>'
            f'<div class="scale"><span>{base:#x}</span><span>{base + span:#x}</span></div>')


def render_html(ctx, sections: list[dict]) -> str:
    """render_html is the page for a finished layout (sections: mapfile.build's)."""
    by_name = {}
    for o, d in zip(ctx.outsections, sections):
        by_name[id(o)] = d
    loaded = [s for s in ctx.segments if s.loaded and s.length]
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
           f"<title>minild map: {html.escape(str(ctx.opts.output))}</title>"
           f"<style>{STYLE}</style></head><body>"
           f"<h1>Link map of {html.escape(str(ctx.opts.output))}</h1>"
           f"<p>format {html.escape(ctx.format.name)}, arch {html.escape(ctx.arch.name)}, "
           f"entry {ctx.entry_addr:#x}, {len(ctx.objects)} input objects "
           f"(including the linker's own). Every bar is drawn to scale: a box's position and "
           f"width are its address and size within the bar's range. Hover over a box for "
           f"its details.</p><p class='legend'>"
           + "".join(f"<span style='background:{c}'>{_perm(p)}</span>"
                     for p, c in PERM_COLORS.items()) + "</p>"]
    # The address space: the loaded segments.
    if loaded:
        lo = min(s.vaddr for s in loaded)
        hi = max(s.vaddr + s.length for s in loaded)
        boxes = [_box("segment", s.name, s.vaddr, s.length, lo, hi - lo, PERM_COLORS[s.perm],
                      f"segment {s.name} ({_perm(s.perm)})\naddress {s.vaddr:#x}-"
                      f"{s.vaddr + s.length:#x}\nsize {s.length:#x} ({s.length} bytes)\n"
                      f"file offset {s.fileoff:#x}, {s.filelen:#x} bytes in the file")
                 for s in loaded]
        out.append("<h2>Address space: segments</h2>")
        out.append(_bar("space", lo, hi - lo, boxes, "address space"))
        out.append("<table><tr><th>segment</th><th>perm</th><th>address</th><th>end</th>"
                   "<th>size</th><th>file offset</th><th>file size</th></tr>")
        for s in loaded:
            out.append(f"<tr><td class=l>{html.escape(s.name)}</td><td class=l>{_perm(s.perm)}"
                       f"</td><td>{s.vaddr:#x}</td><td>{s.vaddr + s.length:#x}</td>"
                       f"<td>{s.length:#x}</td><td>{s.fileoff:#x}</td><td>{s.filelen:#x}</td></tr>")
        out.append("</table>")
    # Each segment: its output sections; each output section: its inputs.
    for s in ctx.segments:
        if not s.sections:
            continue
        secs = [(o, by_name[id(o)]) for o in s.sections if id(o) in by_name]
        if s.loaded:
            base, span = s.vaddr, s.length
            where = lambda o: o.addr  # noqa: E731
        else:     # not loaded (DWARF): drawn by file offset
            base = min(o.fileoff for o in s.sections)
            span = max(o.fileoff + o.size for o in s.sections) - base
            where = lambda o: o.fileoff  # noqa: E731
        out.append(f"<h2>Segment {html.escape(s.name)} ({_perm(s.perm)})"
                   + ("" if s.loaded else ", by file offset") + "</h2>")
        color = PERM_COLORS.get(s.perm, "#ddd")
        boxes = [_box("outsec", o.name, where(o), o.size, base, span, color,
                      f"output section {o.name}\naddress {o.addr:#x}-{o.addr + o.size:#x}\n"
                      f"size {o.size:#x} ({o.size} bytes), align {o.align}\n"
                      f"file offset {o.fileoff:#x}{' (bss: no file bytes)' if o.nobits else ''}\n"
                      f"{len(d['inputs'])} input section{'s' if len(d['inputs']) != 1 else ''}")
                 for o, d in secs]
        first = min((o.addr for o in s.sections), default=base)
        if s.loaded and first > base:     # the file's headers, mapped with the first segment
            boxes.insert(0, _box("headers", "headers", base, first - base, base, span, "#e4e4e4",
                                 f"headers and padding\naddress {base:#x}-{first:#x}\n"
                                 f"size {first - base:#x}"))
        out.append(_bar("segbar", base, span, boxes, s.name))
        for o, d in secs:
            out.append(f"<h3>{html.escape(o.name)}: {o.addr:#x}, {o.size:#x} bytes</h3>")
            shift = where(o) - o.addr
            inner = [_box("input", f"{i['object'].rsplit('/', 1)[-1]}:{i['section']}",
                          i["address"] + shift, i["size"], where(o), o.size,
                          "#fff8d8" if k % 2 else "#ffe9a8",
                          f"{i['object']}:({i['section']})\naddress {i['address']:#x}-"
                          f"{i['address'] + i['size']:#x}\nsize {i['size']:#x} ({i['size']} bytes),"
                          f" align {i['align']}\n"
                          + "\n".join(f"  {x['name']} {x['address']:#x} size {x['size']}"
                                      for x in i["symbols"][:20])
                          + (f"\n  ... {len(i['symbols']) - 20} more symbols"
                             if len(i["symbols"]) > 20 else ""))
                     for k, i in enumerate(d["inputs"][:2000])]
            out.append(_bar("secbar", where(o), o.size, inner, o.name))
            out.append("<table><tr><th>input</th><th>address</th><th>size</th><th>align</th>"
                       "<th>symbols</th></tr>")
            for i in d["inputs"][:2000]:
                out.append(f"<tr><td class=l>{html.escape(i['object'])}:"
                           f"({html.escape(i['section'])})</td><td>{i['address']:#x}</td>"
                           f"<td>{i['size']:#x}</td><td>{i['align']}</td><td class=l>"
                           + html.escape(", ".join(x["name"] for x in i["symbols"][:8])
                                         + (" ..." if len(i["symbols"]) > 8 else ""))
                           + "</td></tr>")
            if len(d["inputs"]) > 2000:
                out.append(f"<tr><td class=l colspan=5>... {len(d['inputs']) - 2000} more input "
                           f"sections (the JSON map has all)</td></tr>")
            out.append("</table>")
    out.append(f"<div id='tip'></div><script>{SCRIPT}</script>"
               f"<script type='application/json' id='map'>"
               f"{json.dumps({'sections': len(sections)})}</script></body></html>")
    return "\n".join(out) + "\n"
