"""Checks scoop's figures with Python readers; prints one JSON object.

    figures.py svg FILE.svg   the text runs, the font family, and each embedded image's size
                              (decoded by PIL) and distinct colours
    figures.py pdf FILE.pdf   pypdf (strict): pages, page size, the extracted text, the fonts,
                              and each image's size (decoded by PIL)
    figures.py mpl TEXT DPI   matplotlib's own rendering of TEXT at 12 pt (the title size) on
                              an Agg canvas: the rows inked more than half, as scoop's tests
                              measure them
"""

import base64
import io
import json
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def svg(path):
    from PIL import Image

    root = ET.parse(path).getroot()
    texts = [t.text for t in root.iter(SVG + "text")]
    families = sorted({t.get("font-family") for t in root.iter(SVG + "text")})
    images = []
    for im in root.iter(SVG + "image"):
        href = im.get(XLINK + "href") or im.get("href")
        head, data = href.split(",", 1)
        assert head == "data:image/png;base64", head
        img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        images.append(
            {
                "size": list(img.size),
                "placed": [float(im.get("width")), float(im.get("height"))],
                "colors": len(img.getcolors(maxcolors=1 << 24)),
            }
        )
    return {
        "width": root.get("width"),
        "height": root.get("height"),
        "viewBox": root.get("viewBox"),
        "texts": texts,
        "families": families,
        "images": images,
        "circles": len(list(root.iter(SVG + "circle"))),
    }


def pdf(path):
    import pypdf

    reader = pypdf.PdfReader(path, strict=True)
    page = reader.pages[0]
    fonts = []
    for f in page["/Resources"]["/Font"].values():
        f = f.get_object()
        desc = f["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        fonts.append(
            {
                "base": f["/BaseFont"],
                "subtype": f["/Subtype"],
                "embedded": "/FontFile2" in desc,
            }
        )
    return {
        "pages": len(reader.pages),
        "mediabox": [float(v) for v in page.mediabox],
        "text": page.extract_text().split("\n"),
        "fonts": fonts,
        "images": [list(im.image.size) for im in page.images],
    }


def mpl(text, dpi):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    dpi = float(dpi)
    fig = plt.figure(figsize=(4, 1), dpi=dpi)
    fig.text(0.5, 0.5, text, fontsize=plt.rcParams["axes.titlesize"], ha="center", va="center")
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:, :, 0]
    rows = np.where((rgb < 128).any(axis=1))[0]
    cols = np.where((rgb < 128).any(axis=0))[0]
    return {
        "height": int(rows[-1] - rows[0] + 1),
        "width": int(cols[-1] - cols[0] + 1),
        "font": matplotlib.font_manager.findfont(plt.rcParams["font.sans-serif"][0]),
    }


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    print(json.dumps({"svg": svg, "pdf": pdf, "mpl": mpl}[cmd](*args)))
