//! QR codes of short links, as SVG and PNG. The code holds the short URL with `?src=qr`, so
//! that scans show up as `source = qr` in the breakdowns.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module in the PNG, and the quiet zone around the code, in modules.
const SCALE: usize = 8;
const QUIET: usize = 4;

/// The URL a link's QR code holds.
pub fn scan_url(short_url: &str) -> String {
    format!("{short_url}?src=qr")
}

fn code(text: &str) -> Result<QrCode, qrcode::types::QrError> {
    // Medium error correction: survives a smudged print, keeps the code small.
    QrCode::with_error_correction_level(text, EcLevel::M)
}

/// The QR code of `text` as an SVG document.
pub fn svg(text: &str) -> Result<String, qrcode::types::QrError> {
    Ok(code(text)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// The QR code of `text` as a black-and-white PNG.
pub fn png(text: &str) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let qr = code(text)?;
    let modules = qr.width();
    let colors = qr.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&pixels)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_renders_as_svg_and_png() {
        let url = scan_url("https://kl.example/amy-serum");
        assert_eq!(url, "https://kl.example/amy-serum?src=qr");
        let s = svg(&url).unwrap();
        assert!(s.contains("<svg") && s.contains("</svg>"));
        let p = png(&url).unwrap();
        assert_eq!(&p[1..4], b"PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(p));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width as usize % SCALE, 0);
    }
}
