//! Till receipts whose every field is known: drawn with a real font (DejaVu Sans Mono,
//! Liberation Mono, Liberation Sans Narrow Bold, in `assets/fonts/`), one text line per printed
//! line, rules as drawn lines. The demo uploads them (so the local reader has something real to
//! read, and the demo can show what it drew beside what was read); the benchmarks' photo corpus
//! photographs them (`benches/support/corpus.rs`).
//!
//! Everything is deterministic: the same seed and month make the same receipt.

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
use chrono::NaiveDate;
use image::{GrayImage, Luma};
use rand::{Rng as _, SeedableRng as _};

/// The fonts receipts are printed in: two monospaced, a narrow bold, a proportional sans and a
/// condensed one.
pub const FONTS: [(&str, &[u8]); 5] = [
    (
        "DejaVu Sans Mono",
        include_bytes!("../assets/fonts/DejaVuSansMono.ttf"),
    ),
    (
        "Liberation Mono",
        include_bytes!("../assets/fonts/LiberationMono-Regular.ttf"),
    ),
    (
        "Liberation Sans Narrow Bold",
        include_bytes!("../assets/fonts/LiberationSansNarrow-Bold.ttf"),
    ),
    (
        "Liberation Sans",
        include_bytes!("../assets/fonts/LiberationSans-Regular.ttf"),
    ),
    (
        "Liberation Sans Narrow",
        include_bytes!("../assets/fonts/LiberationSansNarrow-Regular.ttf"),
    ),
];

/// A receipt's fields, as printed (amounts in cents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drawn {
    pub merchant: String,
    pub address: String,
    pub phone: String,
    pub date: NaiveDate,
    pub time: String,
    pub items: Vec<(String, u32)>,
    pub subtotal: u32,
    pub tax: u32,
    pub total: u32,
    /// The receipt's printed lines.
    pub lines: Vec<String>,
}

const SHOPS: [&str; 4] = [
    "GREENLEAF MARKET",
    "CORNER HARDWARE",
    "BLUE DOOR CAFE",
    "NORTHSIDE PHARMACY",
];
const GOODS: [&str; 16] = [
    "OAT MILK 1L",
    "SOURDOUGH LOAF",
    "FREE RANGE EGGS 12",
    "BANANAS 1.2KG",
    "ESPRESSO BEANS",
    "WOOD SCREWS 4X40",
    "AA BATTERIES 8PK",
    "DISH SOAP 500ML",
    "GREEK YOGURT",
    "CHEDDAR 400G",
    "PAPER TOWELS 6",
    "TOMATOES VINE",
    "OLIVE OIL 750ML",
    "IBUPROFEN 200MG",
    "RICE BASMATI 2KG",
    "GREEN TEA 40",
];

/// A receipt of `items` priced lines, deterministic for `seed`, dated on a day 1 to 28 after
/// `month` (its first day's eve: `month` itself is never the date).
pub fn receipt(items: usize, seed: u64, month: NaiveDate) -> Drawn {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let merchant = SHOPS[rng.random_range(0..SHOPS.len())].to_string();
    let address = format!("{} HARBOR ST, PORTLAND", rng.random_range(10..999));
    let phone = format!(
        "503-{:03}-{:04}",
        rng.random_range(200..999),
        rng.random_range(0..9999)
    );
    let date = month + chrono::Duration::days(rng.random_range(1..29) - 1);
    let time = format!(
        "{:02}:{:02}",
        rng.random_range(8..21),
        rng.random_range(0..60)
    );
    let mut lines = vec![
        format!("{merchant:^32}"),
        format!("{address:^32}"),
        format!("{:^32}", format!("TEL {phone}")),
        format!(
            "{} {time}  TILL {} #{:04}",
            date.format("%Y-%m-%d"),
            rng.random_range(1..9),
            rng.random_range(0..9999)
        ),
    ];
    let mut priced = Vec::with_capacity(items);
    for _ in 0..items {
        let cents = rng.random_range(59..4999u32);
        let good = GOODS[rng.random_range(0..GOODS.len())];
        lines.push(format!("{good:<24}{:>8}", money(cents)));
        priced.push((good.to_string(), cents));
    }
    let subtotal: u32 = priced.iter().map(|(_, c)| c).sum();
    let tax = subtotal * 85 / 1000;
    lines.push(format!("{:<24}{:>8}", "SUBTOTAL", money(subtotal)));
    lines.push(format!("{:<24}{:>8}", "TAX 8.5%", money(tax)));
    lines.push(format!("{:<24}{:>8}", "TOTAL", money(subtotal + tax)));
    lines.push(format!(
        "VISA **** {:04}  AUTH {:06}",
        rng.random_range(0..9999),
        rng.random_range(0..999_999)
    ));
    lines.push(format!("{:^32}", "THANK YOU, COME AGAIN"));
    Drawn {
        merchant,
        address,
        phone,
        date,
        time,
        items: priced,
        subtotal,
        tax,
        total: subtotal + tax,
        lines,
    }
}

/// Cents as the till prints them: `12.34`.
pub fn money(cents: u32) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The receipt, typeset on paper: grey, paper 245, ink `ink` (never 0: a photo keeps 0 for
/// "not paper"), `em` px per em.
pub fn typeset(lines: &[String], font: usize, em: f32, ink: u8) -> GrayImage {
    let font = FontRef::try_from_slice(FONTS[font].1).expect("a bundled font");
    let scaled = font.as_scaled(PxScale::from(em));
    let advance = scaled.h_advance(font.glyph_id('0'));
    let pitch = (em * 1.3).ceil() as u32;
    let margin = (em * 1.6) as u32;
    let width = (advance * 32.0).ceil() as u32 + 2 * margin;
    let rules = 2;
    let height = 2 * margin + pitch * (lines.len() as u32 + rules);
    let mut paper = GrayImage::from_pixel(width, height, Luma([245]));
    let ink = Luma([ink.max(1)]);
    let mut y = margin;
    for (i, line) in lines.iter().enumerate() {
        // Rules under the header and above the totals.
        if i == 4 || i == lines.len() - 5 {
            let rule = y + pitch / 2;
            for x in margin..width - margin {
                for t in 0..(em / 12.0).max(1.0) as u32 {
                    paper.put_pixel(x, rule + t, ink);
                }
            }
            y += pitch;
        }
        imageproc::drawing::draw_text_mut(
            &mut paper,
            ink,
            margin as i32,
            y as i32,
            PxScale::from(em),
            &font,
            line,
        );
        y += pitch;
    }
    paper
}

/// The demo's receipt `index`: 3 to 8 items in one of the three fonts, dated in the four
/// weeks before `today`, as a grey PNG; and what it says.
pub fn demo_receipt(index: usize, today: NaiveDate) -> (Vec<u8>, Drawn) {
    let seed = 0x5eed_0000 + index as u64;
    let drawn = receipt(3 + index % 6, seed, today - chrono::Duration::days(30));
    let paper = typeset(&drawn.lines, index % 3, 26.0, 35);
    let mut png = Vec::new();
    paper
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a PNG in memory");
    (png, drawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_receipt_is_drawn_should_print_totals_that_add_up() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).expect("a day");
        let (png, drawn) = demo_receipt(4, day);
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(drawn.items.len(), 7);
        let sum: u32 = drawn.items.iter().map(|(_, c)| c).sum();
        assert_eq!(drawn.subtotal, sum);
        assert_eq!(drawn.total, drawn.subtotal + drawn.tax);
        assert!(drawn.date < day && drawn.date >= day - chrono::Duration::days(30));
        assert!(drawn.lines.iter().any(|l| l.ends_with(&money(drawn.total))));
        assert_eq!(demo_receipt(4, day).1, drawn, "deterministic");
    }
}
