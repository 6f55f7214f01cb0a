//! A QMP (QEMU Machine Protocol) client over the monitor's unix socket: the capabilities
//! handshake, then one command at a time, skipping asynchronous events.

use std::time::Instant;

use crate::json::{quote, Json};
use crate::lines::{AliveCheck, LineStream};

/// A QMP session in command mode.
#[derive(Debug)]
pub(crate) struct Qmp {
    lines: LineStream,
}

impl Qmp {
    /// Reads the greeting and enters command mode.
    pub(crate) fn handshake(
        lines: LineStream,
        deadline: Instant,
        alive: AliveCheck<'_>,
    ) -> Result<Self, String> {
        let mut qmp = Self { lines };
        let greeting = qmp.read_message(deadline, alive)?;
        if greeting.get("QMP").is_none() {
            return Err(format!("unexpected QMP greeting {greeting:?}"));
        }
        qmp.execute("qmp_capabilities", None, deadline, alive)?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` (a JSON object text, if any) and returns its `return`
    /// value, or the error description QEMU gave.
    pub(crate) fn execute(
        &mut self,
        command: &str,
        arguments: Option<&str>,
        deadline: Instant,
        alive: AliveCheck<'_>,
    ) -> Result<Json, String> {
        let request = match arguments {
            Some(args) => format!("{{\"execute\": {}, \"arguments\": {args}}}", quote(command)),
            None => format!("{{\"execute\": {}}}", quote(command)),
        };
        self.lines.send_line(&request)?;
        loop {
            let message = self.read_message(deadline, alive)?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                let desc = error
                    .get("desc")
                    .and_then(Json::as_str)
                    .unwrap_or("(no description)");
                return Err(format!("QMP {command} failed: {desc}"));
            }
            // Anything else is an event ({"event": ...}); commands are answered in order.
        }
    }

    fn read_message(&mut self, deadline: Instant, alive: AliveCheck<'_>) -> Result<Json, String> {
        loop {
            let line = self.lines.read_line(deadline, alive)?;
            if line.trim().is_empty() {
                continue;
            }
            return Json::parse(&line).map_err(|e| format!("bad QMP message {line:?}: {e}"));
        }
    }
}
