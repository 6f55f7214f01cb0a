//! The command layer of the line protocol: parse one line, call the session, format the
//! answer (the table is in `main.rs`). Nothing here touches the device.

use std::time::Duration;

use viogpu_common::blit::{Point, Rect, Rotation};
use viogpu_guest_runner::scene::{self, PointerName};

use crate::session::{Outcome, PresentReport, Session};

fn number<T: std::str::FromStr>(word: &str, what: &str) -> Outcome<T> {
    word.parse()
        .map_err(|_| format!("bad {what} {word:?} (a decimal number)"))
}

fn color(word: &str) -> Outcome<u32> {
    scene::parse_color(word).ok_or_else(|| format!("bad color {word:?} (RRGGBB hex)"))
}

fn rect(words: &[&str]) -> Outcome<Rect> {
    match words {
        [x0, y0, x1, y1] => Ok(Rect::new(
            number(x0, "x0")?,
            number(y0, "y0")?,
            number(x1, "x1")?,
            number(y1, "y1")?,
        )),
        _ => Err("a rect is x0 y0 x1 y1".into()),
    }
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".into(),
        |d| format!("{:.3}", d.as_secs_f64() * 1000.0),
    )
}

fn present_answer(report: &PresentReport, session: &Session) -> String {
    format!(
        "rects={} transfers={} bytes={} ms={}",
        report.rects,
        report.transfers,
        report.bytes,
        ms(session.timings().present)
    )
}

/// Runs one command line; the text is what follows `OK`.
pub fn run(session: &mut Session, line: &str) -> Outcome<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["ping"] => Ok("pong".into()),
        ["info"] => session.describe(),
        ["dma-free"] => Ok(format!("{}", session.dma_free())),
        ["display-info"] => {
            let heads: Vec<String> = session
                .display_info()
                .iter()
                .map(|(uid, (w, h))| format!("{uid}:{w}x{h}:on"))
                .collect();
            Ok(heads.join(" "))
        }
        ["preferred", s] => {
            let (w, h) = session.preferred_mode(number(s, "scanout")?)?;
            Ok(format!("{w}x{h}"))
        }
        ["mode", s, w, h, c] => {
            let (w, h) = (number(w, "width")?, number(h, "height")?);
            let custom = session.set_mode(number(s, "scanout")?, w, h, color(c)?)?;
            let (transfers, bytes) = session.timings().mode_transfers.unwrap_or_default();
            Ok(format!(
                "{w}x{h} custom={} ms={} transfers={transfers} bytes={bytes}",
                u8::from(custom),
                ms(session.timings().mode_change)
            ))
        }
        ["pattern", s] => {
            let scanout = number(s, "scanout")?;
            let report = session.pattern(scanout)?;
            let (w, h) = session.desktop_size(scanout)?.unwrap_or((0, 0));
            Ok(format!("{w}x{h} {}", present_answer(&report, session)))
        }
        ["present", s, rest @ ..] if !rest.is_empty() && rest.len() % 5 == 0 => {
            let fills = rest
                .chunks_exact(5)
                .map(|w| Ok((rect(&w[..4])?, color(w[4])?)))
                .collect::<Outcome<Vec<_>>>()?;
            let report = session.fill_and_present(number(s, "scanout")?, &fills)?;
            Ok(present_answer(&report, session))
        }
        ["move", s, sx, sy, r @ ..] if r.len() == 4 => {
            let from = Point {
                x: number(sx, "sx")?,
                y: number(sy, "sy")?,
            };
            let report = session.move_and_present(number(s, "scanout")?, from, rect(r)?)?;
            Ok(present_answer(&report, session))
        }
        ["rotate", s, degrees] => {
            let rotation = match *degrees {
                "0" => Rotation::Identity,
                "90" => Rotation::Rotate90,
                "180" => Rotation::Rotate180,
                "270" => Rotation::Rotate270,
                other => return Err(format!("bad rotation {other:?} (0, 90, 180 or 270)")),
            };
            let (w, h) = session.rotate(number(s, "scanout")?, rotation)?;
            Ok(format!("{w}x{h} ms={}", ms(session.timings().mode_change)))
        }
        ["cursor", s, kind, x, y] => {
            let name = PointerName::parse(kind)
                .ok_or_else(|| format!("bad pointer kind {kind:?} (mono, color or masked)"))?;
            let report = session.cursor(
                number(s, "scanout")?,
                name,
                number(x, "x")?,
                number(y, "y")?,
            )?;
            Ok(format!(
                "hot={},{} sent={} in_flight={}",
                report.hot.0, report.hot.1, report.sent, report.in_flight
            ))
        }
        ["bugcheck", s] => {
            let (x0, y0, x1, y1) = session.bugcheck(number(s, "scanout")?)?;
            Ok(format!("{x0} {y0} {x1} {y1}"))
        }
        ["hand-off", s] => {
            let h = session.hand_off(number(s, "target")?)?;
            Ok(format!(
                "{}x{} pitch={} target={} bar={} addr={:#x} ms={}",
                h.size.0,
                h.size.1,
                h.pitch,
                h.target,
                h.bar,
                h.address,
                ms(session.timings().mode_change)
            ))
        }
        ["power-cycle"] => {
            let (heads, resets) = session.power_cycle()?;
            Ok(format!(
                "heads={heads} resets={resets} ms={}",
                ms(session.timings().mode_change)
            ))
        }
        ["stop"] => {
            let left = session.stop()?;
            Ok(format!(
                "dma={} mappings={} status={}",
                left.dma_bytes, left.mappings, left.device_status
            ))
        }
        ["follow", seconds] => {
            let timeout = Duration::from_secs(number(seconds, "seconds")?);
            let (applied, ms) = session.follow(timeout)?;
            let heads: Vec<String> = applied
                .iter()
                .map(|(s, w, h)| format!("{s}:{w}x{h}"))
                .collect();
            Ok(format!("{} ms={ms}", heads.join(" ")))
        }
        ["timings"] => {
            let t = session.timings();
            Ok(format!(
                "present_ms={} mode_ms={}",
                ms(t.present),
                ms(t.mode_change)
            ))
        }
        _ => Err(format!("unknown command or wrong arguments: {line:?}")),
    }
}
