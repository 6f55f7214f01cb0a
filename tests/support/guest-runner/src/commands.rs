//! The command layer of the line protocol: parse one line, call the session, format the
//! answer (the table is in `main.rs`). Nothing here touches the device.

use std::time::Duration;

use viogpu_common::blit::{Point, Rect, Rotation};
use viogpu_common::present::PresentStats;
use viogpu_guest_runner::scene::{self, PointerName};

use crate::session::{Outcome, Session};

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
        |d| format!("{:.1}", d.as_secs_f64() * 1000.0),
    )
}

fn present_answer(stats: &PresentStats, session: &Session) -> String {
    format!(
        "rects={} transfers={} bytes={} ms={}",
        stats.rects,
        stats.transfers,
        stats.bytes,
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
            let info = session.display_info()?;
            let heads: Vec<String> = info
                .pmodes
                .iter()
                .enumerate()
                .filter(|(_, m)| m.enabled != 0 || m.r.width != 0 || m.r.height != 0)
                .map(|(i, m)| {
                    let on = if m.enabled != 0 { "on" } else { "off" };
                    format!("{i}:{}x{}:{on}", m.r.width, m.r.height)
                })
                .collect();
            Ok(heads.join(" "))
        }
        ["preferred", s] => {
            let (w, h) = session.preferred_mode(number(s, "scanout")?)?;
            Ok(format!("{w}x{h}"))
        }
        ["mode", s, w, h, c] => {
            let (w, h) = (number(w, "width")?, number(h, "height")?);
            session.set_mode(number(s, "scanout")?, w, h, color(c)?)?;
            Ok(format!("{w}x{h} ms={}", ms(session.timings().mode_change)))
        }
        ["pattern", s] => {
            let scanout = number(s, "scanout")?;
            let stats = session.pattern(scanout)?;
            let (w, h) = session.desktop_size(scanout)?.unwrap_or((0, 0));
            Ok(format!(
                "{w}x{h} transfers={} bytes={} ms={}",
                stats.transfers,
                stats.bytes,
                ms(session.timings().present)
            ))
        }
        ["present", s, rest @ ..] if !rest.is_empty() && rest.len() % 5 == 0 => {
            let fills = rest
                .chunks_exact(5)
                .map(|w| Ok((rect(&w[..4])?, color(w[4])?)))
                .collect::<Outcome<Vec<_>>>()?;
            let stats = session.fill_and_present(number(s, "scanout")?, &fills)?;
            Ok(present_answer(&stats, session))
        }
        ["move", s, sx, sy, r @ ..] if r.len() == 4 => {
            let from = Point {
                x: number(sx, "sx")?,
                y: number(sy, "sy")?,
            };
            let stats = session.move_and_present(number(s, "scanout")?, from, rect(r)?)?;
            Ok(present_answer(&stats, session))
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
                "resource={} hot={},{} sent={} in_flight={} faults={} error_responses={}",
                report.resource_id,
                report.hot.0,
                report.hot.1,
                report.sent,
                report.in_flight,
                report.device_faults,
                report.error_responses
            ))
        }
        ["bugcheck", s] => {
            let r = session.bugcheck(number(s, "scanout")?)?;
            Ok(format!("{} {} {} {}", r.left, r.top, r.right, r.bottom))
        }
        ["power-cycle"] => {
            let restored = session.power_cycle()?;
            Ok(format!(
                "restored={restored} ms={}",
                ms(session.timings().mode_change)
            ))
        }
        ["stop"] => {
            let left = session.stop()?;
            Ok(format!(
                "resources={} dma={}",
                left.resources, left.dma_bytes
            ))
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
