//! PDF documents (certificates, reports, invoices): A4 pages of text in the standard Helvetica
//! fonts (nothing to embed), rules, simple tables and QR codes, written with `pdf-writer`.
//! Text is encoded as WinAnsi; characters outside it are replaced by their closest ASCII.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

pub const WIDTH: f32 = 595.0;
pub const HEIGHT: f32 = 842.0;
pub const MARGIN: f32 = 56.0;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// A document being written, page by page, top to bottom.
pub struct Document {
    title: String,
    pages: Vec<Content>,
    /// Baseline of the next line on the current page, from the bottom.
    pub y: f32,
}

impl Document {
    pub fn new(title: &str) -> Document {
        let mut doc = Document {
            title: title.to_owned(),
            pages: Vec::new(),
            y: 0.0,
        };
        doc.new_page();
        doc
    }

    pub fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = HEIGHT - MARGIN;
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a page")
    }

    /// Starts a new page when fewer than `needed` points are left.
    pub fn ensure(&mut self, needed: f32) {
        if self.y - needed < MARGIN {
            self.new_page();
        }
    }

    /// Text at (x, y) without moving the cursor.
    pub fn text_at(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let bytes = win_ansi(text);
        let c = self.page();
        c.begin_text();
        c.set_font(if bold { BOLD } else { REGULAR }, size);
        c.next_line(x, y);
        c.show(Str(&bytes));
        c.end_text();
    }

    /// One line of text at the left margin (wrapped at about `width` points), then the cursor
    /// moves down.
    pub fn line(&mut self, size: f32, bold: bool, text: &str) {
        // Helvetica averages about half an em per character.
        let per_line = ((WIDTH - 2.0 * MARGIN) / (size * 0.5)).max(10.0) as usize;
        for chunk in wrap(text, per_line) {
            self.ensure(size * 1.4);
            let y = self.y - size;
            self.text_at(MARGIN, y, size, bold, &chunk);
            self.y -= size * 1.4;
        }
    }

    /// "Label: value" pairs in two columns.
    pub fn facts(&mut self, rows: &[(&str, String)]) {
        for (label, value) in rows {
            let per_line = ((WIDTH - 2.0 * MARGIN - 150.0) / 5.0) as usize;
            let lines = wrap(value, per_line);
            self.ensure(14.0 * lines.len() as f32 + 4.0);
            let y = self.y - 10.0;
            self.text_at(MARGIN, y, 10.0, true, label);
            for (i, l) in lines.iter().enumerate() {
                self.text_at(MARGIN + 150.0, y - 14.0 * i as f32, 10.0, false, l);
            }
            self.y -= 14.0 * lines.len() as f32 + 4.0;
        }
    }

    /// A table: column x offsets from the margin, a bold header, then rows (new pages as needed,
    /// the header repeated).
    pub fn table(&mut self, columns: &[(f32, &str)], rows: &[Vec<String>]) {
        let header = |doc: &mut Document| {
            doc.ensure(30.0);
            let y = doc.y - 9.0;
            for (x, title) in columns {
                doc.text_at(MARGIN + x, y, 9.0, true, title);
            }
            doc.y -= 13.0;
            doc.rule();
        };
        header(self);
        for row in rows {
            if self.y - 13.0 < MARGIN {
                self.new_page();
                header(self);
            }
            let y = self.y - 9.0;
            for ((x, _), cell) in columns.iter().zip(row) {
                self.text_at(MARGIN + x, y, 9.0, false, cell);
            }
            self.y -= 13.0;
        }
    }

    /// A bar chart of one value per labelled bucket, the page's width and 150 points tall,
    /// with its largest value written at the top of the scale.
    pub fn bar_chart(&mut self, caption: &str, points: &[(String, f64)]) {
        const TALL: f32 = 150.0;
        self.ensure(TALL + 50.0);
        self.line(11.0, true, caption);
        let top = points.iter().map(|p| p.1).fold(0.0, f64::max);
        let base = self.y - TALL;
        let left = MARGIN + 50.0;
        let width = WIDTH - MARGIN - left;
        self.text_at(MARGIN, self.y - 8.0, 8.0, false, &format!("{top:.0}"));
        self.text_at(MARGIN, base, 8.0, false, "0");
        let n = points.len().max(1) as f32;
        let slot = width / n;
        let every = (points.len() as f32 / 12.0).ceil().max(1.0) as usize;
        for (i, (label, value)) in points.iter().enumerate() {
            let h = if top > 0.0 {
                (value / top) as f32 * (TALL - 10.0)
            } else {
                0.0
            };
            let x = left + slot * i as f32;
            if h > 0.0 {
                let c = self.page();
                c.set_fill_rgb(0.10, 0.54, 0.39);
                c.rect(x + slot * 0.15, base, slot * 0.7, h);
                c.fill_nonzero();
            }
            if i % every == 0 {
                self.text_at(x, base - 11.0, 7.0, false, label);
            }
        }
        let c = self.page();
        c.set_fill_gray(0.0);
        c.set_line_width(0.5);
        c.move_to(left, base);
        c.line_to(WIDTH - MARGIN, base);
        c.stroke();
        self.y = base - 24.0;
    }

    /// A thin horizontal rule across the page.
    pub fn rule(&mut self) {
        let y = self.y - 2.0;
        let c = self.page();
        c.set_line_width(0.5);
        c.move_to(MARGIN, y);
        c.line_to(WIDTH - MARGIN, y);
        c.stroke();
        self.y -= 8.0;
    }

    pub fn space(&mut self, points: f32) {
        self.y -= points;
    }

    /// A QR code of `data`, `size` points wide, its top-left corner at (x, top).
    pub fn qr(&mut self, x: f32, top: f32, size: f32, data: &str) -> Result<(), String> {
        let code = qrcode::QrCode::new(data.as_bytes()).map_err(|e| e.to_string())?;
        let n = code.width();
        // A quiet zone of four modules on each side.
        let module = size / (n + 8) as f32;
        let colors = code.to_colors();
        let c = self.page();
        c.set_fill_gray(0.0);
        for (i, color) in colors.iter().enumerate() {
            if *color == qrcode::Color::Dark {
                let (col, row) = ((i % n) as f32, (i / n) as f32);
                c.rect(
                    x + (col + 4.0) * module,
                    top - (row + 5.0) * module,
                    module,
                    module,
                );
            }
        }
        c.fill_nonzero();
        Ok(())
    }

    /// The finished file.
    pub fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let mut next = 6;
        let mut page_ids = Vec::new();
        let mut content_ids = Vec::new();
        for _ in &self.pages {
            page_ids.push(Ref::new(next));
            content_ids.push(Ref::new(next + 1));
            next += 2;
        }
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(page_ids.len() as i32);
        pdf.document_info(info)
            .title(TextStr(&self.title))
            .producer(TextStr("EV Carbon Exchange"));
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        for (i, content) in self.pages.into_iter().enumerate() {
            let mut page = pdf.page(page_ids[i]);
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
            page.parent(tree);
            page.contents(content_ids[i]);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(REGULAR, regular);
            fonts.pair(BOLD, bold);
            drop(fonts);
            drop(resources);
            drop(page);
            pdf.stream(content_ids[i], &content.finish());
        }
        pdf.finish()
    }
}

/// Splits on spaces into lines of at most `width` characters (longer words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            lines.push(head);
        }
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// WinAnsi bytes of `text`: Latin-1 as is, a few typographic characters mapped, the rest as
/// their closest ASCII or "?".
fn win_ansi(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '₂' => out.push(b'2'),
            '–' => out.push(0x96),
            '—' => out.push(0x97),
            '‘' => out.push(0x91),
            '’' => out.push(0x92),
            '“' => out.push(0x93),
            '”' => out.push(0x94),
            '•' => out.push(0x95),
            '…' => out.push(0x85),
            '€' => out.push(0x80),
            '→' => out.extend_from_slice(b"->"),
            '≥' => out.extend_from_slice(b">="),
            '≤' => out.extend_from_slice(b"<="),
            '×' => out.push(0xD7),
            '÷' => out.push(0xF7),
            '−' => out.push(b'-'),
            c if (c as u32) < 0x80 => out.push(c as u8),
            c if (0xA0..=0xFF).contains(&(c as u32)) => out.push(c as u32 as u8),
            c => out.extend(deunicode_fallback(c)),
        }
    }
    out
}

/// Vietnamese and other accented letters outside Latin-1 lose their accent.
fn deunicode_fallback(c: char) -> Vec<u8> {
    let base = match c {
        'ạ' | 'ả' | 'ấ' | 'ầ' | 'ẩ' | 'ẫ' | 'ậ' | 'ắ' | 'ằ' | 'ẳ' | 'ẵ' | 'ặ' | 'ă' => {
            'a'
        }
        'Ạ' | 'Ả' | 'Ấ' | 'Ầ' | 'Ẩ' | 'Ẫ' | 'Ậ' | 'Ắ' | 'Ằ' | 'Ẳ' | 'Ẵ' | 'Ặ' | 'Ă' => {
            'A'
        }
        'ẹ' | 'ẻ' | 'ẽ' | 'ế' | 'ề' | 'ể' | 'ễ' | 'ệ' => 'e',
        'Ẹ' | 'Ẻ' | 'Ẽ' | 'Ế' | 'Ề' | 'Ể' | 'Ễ' | 'Ệ' => 'E',
        'ỉ' | 'ị' | 'ĩ' => 'i',
        'Ỉ' | 'Ị' | 'Ĩ' => 'I',
        'ọ' | 'ỏ' | 'ố' | 'ồ' | 'ổ' | 'ỗ' | 'ộ' | 'ơ' | 'ớ' | 'ờ' | 'ở' | 'ỡ' | 'ợ' => {
            'o'
        }
        'Ọ' | 'Ỏ' | 'Ố' | 'Ồ' | 'Ổ' | 'Ỗ' | 'Ộ' | 'Ơ' | 'Ớ' | 'Ờ' | 'Ở' | 'Ỡ' | 'Ợ' => {
            'O'
        }
        'ụ' | 'ủ' | 'ũ' | 'ư' | 'ứ' | 'ừ' | 'ử' | 'ữ' | 'ự' => 'u',
        'Ụ' | 'Ủ' | 'Ũ' | 'Ư' | 'Ứ' | 'Ừ' | 'Ử' | 'Ữ' | 'Ự' => 'U',
        'ỳ' | 'ỵ' | 'ỷ' | 'ỹ' => 'y',
        'Ỳ' | 'Ỵ' | 'Ỷ' | 'Ỹ' => 'Y',
        'đ' => 'd',
        'Đ' => 'D',
        _ => '?',
    };
    vec![base as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pdf_with_its_pages() {
        let mut doc = Document::new("Test");
        doc.line(18.0, true, "Retirement certificate CERT-2026-000001");
        doc.facts(&[("Beneficiary", "Công ty Xanh – 10 t CO₂".into())]);
        doc.qr(
            MARGIN,
            300.0,
            100.0,
            "http://127.0.0.1:3000/verify/CERT-2026-000001",
        )
        .unwrap();
        let rows: Vec<Vec<String>> = (0..120).map(|i| vec![i.to_string(), "x".into()]).collect();
        doc.table(&[(0.0, "#"), (50.0, "Value")], &rows);
        let bytes = doc.finish();
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("/Count 1"), "120 rows spill onto more pages");
        assert!(text.contains("/Count "));
        assert!(text.contains("WinAnsiEncoding"));
    }

    #[test]
    fn text_is_win_ansi() {
        assert_eq!(win_ansi("CO₂ – Công ty"), b"CO2 \x96 C\xf4ng ty".to_vec());
        assert_eq!(win_ansi("Đạt"), b"Dat".to_vec());
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
    }
}
