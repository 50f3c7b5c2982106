//! How commands print: aligned text for people, JSON for scripts, one-line errors on stderr.

use opsiq_core::Error;
use serde::Serialize;

pub struct Printer {
    pub json: bool,
}

impl Printer {
    /// Prints `value` as JSON with `--json`, otherwise the text `human` renders.
    pub fn show<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            let text = human(value);
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// Prints rows as an aligned table (or a JSON array with `--json`).
    pub fn table<T: Serialize>(
        &self,
        rows: &[T],
        header: &[&str],
        cells: impl Fn(&T) -> Vec<String>,
    ) {
        self.show(&rows, |rows| {
            let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
            lines.extend(rows.iter().map(&cells));
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    lines
                        .iter()
                        .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            lines
                .iter()
                .map(|l| {
                    l.iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
    }

    /// One line on stderr (a JSON object with `--json`).
    pub fn error(&self, error: &Error) {
        if self.json {
            eprintln!(
                "{}",
                serde_json::json!({"error": error.code(), "message": error.to_string()})
            );
        } else {
            eprintln!("error: {error}");
        }
    }
}
