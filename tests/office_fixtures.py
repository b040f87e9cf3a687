"""Tiny office packages built in code (.docx, .pptx, .odt, .odp, .epub) for the office
document tests, each with every kind of text element, and hostile zips."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")
DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'


def make_zip(entries: list[tuple[str, bytes | str]], stored: tuple[str, ...] = ("mimetype",)
             ) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6))
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            z.writestr(info, data.encode("utf-8") if isinstance(data, str) else data)
    return out.getvalue()


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


# ------------------------------------------------------------------------------ docx

W_NS = ('xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
        'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" '
        'mc:Ignorable="w14"')
DOCX_CT = (DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
           '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
           'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
           '<Default Extension="png" ContentType="image/png"/>'
           '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats'
           '-officedocument.wordprocessingml.document.main+xml"/>'
           '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-'
           'officedocument.wordprocessingml.styles+xml"/>'
           '<Override PartName="/word/header1.xml" ContentType="application/vnd.openxmlformats-'
           'officedocument.wordprocessingml.header+xml"/>'
           '<Override PartName="/word/footer1.xml" ContentType="application/vnd.openxmlformats-'
           'officedocument.wordprocessingml.footer+xml"/>'
           '<Override PartName="/word/footnotes.xml" ContentType="application/vnd.'
           'openxmlformats-officedocument.wordprocessingml.footnotes+xml"/>'
           '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
           'package.core-properties+xml"/></Types>')
RELS = (DECL + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>')
DOC_RELS = (DECL + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/styles" Target="styles.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/header" Target="header1.xml"/>'
            '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/footer" Target="footer1.xml"/>'
            '<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/footnotes" Target="footnotes.xml"/>'
            '<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/image" Target="media/image1.png"/>'
            '<Relationship Id="rId6" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/hyperlink" Target="https://example.org/" TargetMode="External"/>'
            '</Relationships>')
STYLES = (DECL + f'<w:styles {W_NS}><w:docDefaults><w:rPrDefault><w:rPr><w:lang w:val="de-DE"/>'
          '</w:rPr></w:rPrDefault></w:docDefaults><w:style w:type="paragraph" '
          'w:styleId="Heading1"><w:name w:val="heading 1"/><w:rPr><w:b/></w:rPr></w:style>'
          '</w:styles>')
CORE = (DECL + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:title>Titel</dc:title><dc:language>de-DE</dc:language></cp:coreProperties>')


def _r(text: str, props: str = "") -> str:
    rpr = f"<w:rPr>{props}</w:rPr>" if props else ""
    return f'<w:r w:rsidR="00A1">{rpr}<w:t xml:space="preserve">{text}</w:t></w:r>'


def _p(content: str, ppr: str = "") -> str:
    return f"<w:p>{f'<w:pPr>{ppr}</w:pPr>' if ppr else ''}{content}</w:p>"


PICTURE = ('<w:r><w:drawing><wp:inline><wp:extent cx="9525" cy="9525"/>'
           '<wp:docPr id="1" name="Bild 1" descr="ein rotes Haus"/>'
           '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/'
           'picture"><pic:pic><pic:nvPicPr><pic:cNvPr id="0" name="image1.png"/><pic:cNvPicPr/>'
           '</pic:nvPicPr><pic:blipFill><a:blip r:embed="rId5"/></pic:blipFill><pic:spPr/>'
           '</pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r>')
TEXT_BOX = ('<w:r><w:drawing><wp:anchor><wp:docPr id="2" name="Textfeld 1"/><a:graphic>'
            '<a:graphicData uri="http://schemas.microsoft.com/office/word/2010/'
            'wordprocessingShape"><wps:wsp><wps:txbx><w:txbxContent>'
            + _p(_r("im kasten"))
            + '</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor>'
            '</w:drawing></w:r>')
PAGE_FIELD = ('<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE '
              '</w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r>'
              '<w:r><w:t>7</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>')


def docx() -> bytes:
    """Heading, a paragraph with bold/italic/link runs, a table, a list item, a text box, a
    picture with alt text, a footnote, a header and a footer with a page field."""
    body = "".join([
        _p(_r("die ueberschrift"), '<w:pStyle w:val="Heading1"/>'),
        _p(_r("das ist ") + _r("sehr", "<w:b/>") + _r(" und ") + _r("gut", "<w:i/>")
           + _r(" mit ") + '<w:hyperlink r:id="rId6">' + _r("einem link", '<w:u w:val="single"/>')
           + "</w:hyperlink>" + _r(" am ende")
           + '<w:r><w:footnoteReference w:id="1"/></w:r>'),
        '<w:tbl><w:tblPr/><w:tblGrid><w:gridCol/></w:tblGrid><w:tr><w:tc>'
        + _p(_r("in der zelle")) + "</w:tc></w:tr></w:tbl>",
        _p(_r("ein listenpunkt"), '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>'),
        _p(_r("vor dem kasten") + TEXT_BOX),
        _p(PICTURE),
        _p(_r("erste zeile") + '<w:r><w:br/></w:r>' + _r("zweite") + '<w:r><w:tab/></w:r>'
           + _r("spalte")),
        '<w:sectPr><w:headerReference w:type="default" r:id="rId2"/>'
        '<w:footerReference w:type="default" r:id="rId3"/></w:sectPr>',
    ])
    document = DECL + f"<w:document {W_NS}><w:body>{body}</w:body></w:document>"
    header = DECL + f"<w:hdr {W_NS}>" + _p(_r("die kopfzeile")) + "</w:hdr>"
    footer = DECL + f"<w:ftr {W_NS}>" + _p(_r("seite ") + PAGE_FIELD) + "</w:ftr>"
    footnotes = (DECL + f"<w:footnotes {W_NS}>"
                 '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
                 '</w:footnote><w:footnote w:id="1">'
                 + _p('<w:r><w:footnoteRef/></w:r>' + _r(" die fussnote")) + "</w:footnote>"
                 "</w:footnotes>")
    return make_zip([
        ("[Content_Types].xml", DOCX_CT), ("_rels/.rels", RELS),
        ("word/document.xml", document), ("word/_rels/document.xml.rels", DOC_RELS),
        ("word/styles.xml", STYLES), ("word/header1.xml", header),
        ("word/footer1.xml", footer), ("word/footnotes.xml", footnotes),
        ("word/media/image1.png", PNG), ("docProps/core.xml", CORE)])


# ------------------------------------------------------------------------------ pptx

P_NS = ('xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
        'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"')
PPTX_CT = (DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
           '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
           'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
           '<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.'
           'openxmlformats-officedocument.presentationml.presentation.main+xml"/>'
           '<Override PartName="/ppt/slides/slide1.xml" ContentType="application/vnd.'
           'openxmlformats-officedocument.presentationml.slide+xml"/>'
           '<Override PartName="/ppt/notesSlides/notesSlide1.xml" ContentType="application/vnd.'
           'openxmlformats-officedocument.presentationml.notesSlide+xml"/></Types>')


def _ar(text: str, props: str = 'lang="de-DE"') -> str:
    return f"<a:r><a:rPr {props}/><a:t>{text}</a:t></a:r>"


def _shape(paragraphs: str, descr: str = "") -> str:
    alt = f' descr="{descr}"' if descr else ""
    return (f'<p:sp><p:nvSpPr><p:cNvPr id="2" name="Titel 1"{alt}/><p:cNvSpPr/><p:nvPr/>'
            f"</p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/>{paragraphs}</p:txBody></p:sp>")


def pptx() -> bytes:
    """A title, a paragraph with bold/italic runs and a line break, a table cell, a picture
    with alt text, a slide number field and speaker notes."""
    title = _shape("<a:p>" + _ar("der titel") + '<a:endParaRPr lang="de-DE"/></a:p>')
    body = _shape("<a:p><a:pPr lvl=\"0\"/>" + _ar("das ist ") + _ar("sehr", 'lang="de-DE" b="1"')
                  + _ar(" und ") + _ar("gut", 'lang="de-DE" i="1"') + "<a:br><a:rPr/></a:br>"
                  + _ar("neue zeile") + '<a:fld id="{1}" type="slidenum"><a:t>3</a:t></a:fld>'
                  + '<a:endParaRPr lang="de-DE" dirty="0"/></a:p>', descr="ein textfeld")
    table = ('<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="4" name="Tabelle"/>'
             '<p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr><p:xfrm/><a:graphic>'
             '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/table">'
             '<a:tbl><a:tr h="100"><a:tc><a:txBody><a:bodyPr/><a:p>' + _ar("in der zelle")
             + "</a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic>"
             "</p:graphicFrame>")
    picture = ('<p:pic><p:nvPicPr><p:cNvPr id="5" name="Bild" descr="ein rotes Haus"/>'
               '<p:cNvPicPr/><p:nvPr/></p:nvPicPr><p:blipFill/><p:spPr/></p:pic>')
    slide = (DECL + f"<p:sld {P_NS}><p:cSld><p:spTree><p:nvGrpSpPr/><p:grpSpPr/>"
             + title + body + table + picture + "</p:spTree></p:cSld></p:sld>")
    notes = (DECL + f"<p:notes {P_NS}><p:cSld><p:spTree>"
             + _shape("<a:p>" + _ar("die notizen") + "</a:p>") + "</p:spTree></p:cSld></p:notes>")
    presentation = DECL + f"<p:presentation {P_NS}><p:sldIdLst/></p:presentation>"
    return make_zip([
        ("[Content_Types].xml", PPTX_CT), ("_rels/.rels", RELS.replace(
            "word/document.xml", "ppt/presentation.xml")),
        ("ppt/presentation.xml", presentation), ("ppt/slides/slide1.xml", slide),
        ("ppt/notesSlides/notesSlide1.xml", notes)])


# ------------------------------------------------------------------------------ odf

ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
          'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
          'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
          'xmlns:xlink="http://www.w3.org/1999/xlink" '
          'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
          'xmlns:dc="http://purl.org/dc/elements/1.1/" '
          'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" office:version="1.3"')
MANIFEST = ('<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:'
            'names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
            '<manifest:file-entry manifest:full-path="/" manifest:media-type="{mime}"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/'
            'xml"/></manifest:manifest>')
ODF_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
FRAME = ('<draw:frame draw:name="Bild1"><draw:image xlink:href="Pictures/a.png"/>'
         '<svg:title>ein rotes Haus</svg:title></draw:frame>')


def _odf(mime: str, body: str, master: str) -> bytes:
    styles = (ODF_DECL + f"<office:document-styles {ODF_NS}><office:styles><style:default-style "
              'style:family="paragraph"><style:text-properties fo:language="de" '
              'fo:country="DE"/></style:default-style></office:styles>'
              f"<office:master-styles>{master}</office:master-styles>"
              "</office:document-styles>")
    content = (ODF_DECL + f"<office:document-content {ODF_NS}><office:automatic-styles>"
               '<style:style style:name="T1" style:family="text"><style:text-properties '
               'fo:font-weight="bold"/></style:style></office:automatic-styles>'
               f"<office:body>{body}</office:body></office:document-content>")
    meta = (ODF_DECL + f"<office:document-meta {ODF_NS}><office:meta><dc:title>Titel</dc:title>"
            "<dc:language>de-DE</dc:language></office:meta></office:document-meta>")
    return make_zip([("mimetype", mime), ("content.xml", content), ("styles.xml", styles),
                     ("meta.xml", meta), ("Pictures/a.png", PNG),
                     ("META-INF/manifest.xml", MANIFEST.replace("{mime}", mime))])


def odt() -> bytes:
    """Heading, a paragraph with a bold span and a link, a table, a list item, a footnote, a
    picture with alt text, a header and a footer."""
    body = ('<office:text><text:h text:outline-level="1">die ueberschrift</text:h>'
            '<text:p>das ist <text:span text:style-name="T1">sehr</text:span> gut mit '
            '<text:a xlink:type="simple" xlink:href="https://example.org/">einem link</text:a>'
            ' am<text:s/>ende<text:note text:id="n1" text:note-class="footnote">'
            '<text:note-citation>1</text:note-citation><text:note-body>'
            "<text:p>die fussnote</text:p></text:note-body></text:note></text:p>"
            "<table:table><table:table-row><table:table-cell><text:p>in der zelle</text:p>"
            "</table:table-cell></table:table-row></table:table>"
            "<text:list><text:list-item><text:p>ein listenpunkt</text:p></text:list-item>"
            f"</text:list><text:p>{FRAME}</text:p>"
            "<text:p>erste zeile<text:line-break/>zweite<text:tab/>spalte</text:p>"
            "</office:text>")
    master = ('<style:master-page style:name="Standard"><style:header><text:p>die kopfzeile'
              '</text:p></style:header><style:footer><text:p>seite <text:page-number>7'
              "</text:page-number></text:p></style:footer></style:master-page>")
    return _odf("application/vnd.oasis.opendocument.text", body, master)


def odp() -> bytes:
    """A title frame, a text frame with a bold span, a picture with alt text and notes."""
    body = ('<office:presentation><draw:page draw:name="page1">'
            '<draw:frame presentation:class="title"><draw:text-box><text:p>der titel</text:p>'
            "</draw:text-box></draw:frame>"
            '<draw:frame><draw:text-box><text:p>das ist <text:span text:style-name="T1">sehr'
            "</text:span> gut</text:p></draw:text-box></draw:frame>"
            '<draw:frame draw:name="Bild1"><draw:image xlink:href="Pictures/a.png"/>'
            "<svg:desc>ein rotes Haus</svg:desc></draw:frame>"
            '<presentation:notes><draw:frame><draw:text-box><text:p>die notizen</text:p>'
            "</draw:text-box></draw:frame></presentation:notes>"
            "</draw:page></office:presentation>")
    return _odf("application/vnd.oasis.opendocument.presentation", body,
                '<style:master-page style:name="Default"/>')


# ------------------------------------------------------------------------------ epub


def epub() -> bytes:
    container = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
                 'opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/'
                 'content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
                 "</container>")
    opf = ('<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf"'
           ' version="3.0" unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/'
           'elements/1.1/"><dc:identifier id="id">x</dc:identifier><dc:title>Titel</dc:title>'
           "<dc:language>de</dc:language></metadata><manifest>"
           '<item id="c1" href="chapter1.xhtml" media-type="application/xhtml+xml"/>'
           '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
           '<item id="img" href="a.png" media-type="image/png"/></manifest>'
           '<spine toc="ncx"><itemref idref="c1"/></spine></package>')
    chapter = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
               '<html xmlns="http://www.w3.org/1999/xhtml" lang="de" xml:lang="de"><head>'
               "<title>das kapitel</title></head><body><h1>die ueberschrift</h1>"
               "<p>das ist <b>sehr</b> gut&#160;so</p>"
               '<p><img src="a.png" alt="ein rotes Haus"/></p></body></html>')
    ncx = ('<?xml version="1.0" encoding="UTF-8"?><ncx xmlns="http://www.daisy.org/z3986/2005/'
           'ncx/" version="2005-1"><navMap><navPoint id="n1"><navLabel><text>erstes kapitel'
           '</text></navLabel><content src="chapter1.xhtml"/></navPoint></navMap></ncx>')
    return make_zip([("mimetype", "application/epub+zip"),
                     ("META-INF/container.xml", container), ("OEBPS/content.opf", opf),
                     ("OEBPS/chapter1.xhtml", chapter), ("OEBPS/toc.ncx", ncx),
                     ("OEBPS/a.png", PNG)])


# ------------------------------------------------------------------------------ hostile


def overlapping_bomb(copies: int = 50, size: int = 1_000_000) -> bytes:
    """Fifield's overlapping-entry zip bomb: every entry's data is the same deflate stream."""
    kernel = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = kernel.compress(b"\0" * size) + kernel.flush()
    crc = zlib.crc32(b"\0" * size)
    out = io.BytesIO()
    headers = []
    names = [f"word/f{i}.xml".encode() for i in range(copies)]
    for name in names:  # local headers, all pointing at the kernel that follows
        headers.append(out.tell())
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(stream),
                              size, len(name), 0) + name)
    out.write(stream)
    central = out.tell()
    for offset, name in zip(headers, names):
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc,
                              len(stream), size, len(name), 0, 0, 0, 0, 0, offset) + name)
    end = out.tell()
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, end - central,
                          central, 0))
    return out.getvalue()


def docx_with(document_xml: str) -> bytes:
    """The tiny .docx with word/document.xml replaced."""
    entries = [(name, data) for name, data in parts(docx()).items()]
    return make_zip([(name, document_xml if name == "word/document.xml" else data)
                     for name, data in entries])


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + f']><w:document {W_NS}><w:body><w:p><w:r><w:t>&j;</w:t></w:r></w:p></w:body>'
    "</w:document>")
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f"<w:document {W_NS}><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>")
DEEP = (f"<w:document {W_NS}><w:body>" + "<w:sdt><w:sdtContent>" * 5000
        + "</w:sdtContent></w:sdt>" * 5000 + "</w:body></w:document>")


def ratio_bomb(size: int = 100_000_000) -> bytes:
    """One entry of zeros compressed about 1000:1 inside an otherwise valid .docx."""
    return make_zip([*parts(docx()).items(), ("word/media/zeros.bin", b"\0" * size)])


def many_entries(count: int = 6_000) -> bytes:
    return make_zip([*parts(docx()).items(), *((f"x/{i}", b"") for i in range(count))])


def traversal() -> bytes:
    return make_zip([*parts(docx()).items(), ("../../evil.sh", b"echo pwned")])


def encrypted_flag() -> bytes:
    """A package whose entries claim traditional PKWARE encryption (flag bit 0)."""
    data = bytearray(docx())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            data[found + flag_at] |= 1
            start = found + 4
    return bytes(data)


def lying_sizes() -> bytes:
    """The central directory says document.xml is 100 bytes; it inflates to much more."""
    data = bytearray(docx())
    name = b"word/document.xml"
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            name_at = found + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at:name_at + len(name)] == name:
                data[found + size_at:found + size_at + 4] = struct.pack("<I", 100)
            start = found + 4
    return bytes(data)
