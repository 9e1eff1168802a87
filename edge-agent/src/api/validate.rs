//! `/config/validate`: checks the `[[cameras.zones]]` / `[[cameras.lines]]` TOML the installer page
//! produces against a camera, with the same rule checks `edge-agent check` runs, so an installer
//! learns of a crossing polygon or a rule left without its zone before pasting it into the config.

use serde::{Deserialize, Serialize};

use crate::config::{CameraConfig, LineConfig, ZoneConfig};
use crate::rules::At;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snippet {
    #[serde(default)]
    cameras: SnippetCamera,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnippetCamera {
    #[serde(default)]
    zones: Vec<ZoneConfig>,
    #[serde(default)]
    lines: Vec<LineConfig>,
}

/// One problem, placed in the snippet where possible.
#[derive(Debug, Serialize, PartialEq)]
pub struct SnippetProblem {
    /// 1-based line in the snippet, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Key path, e.g. `zones[1].polygon`.
    pub at: String,
    pub message: String,
    pub hint: String,
}

/// The outcome of a check.
#[derive(Debug, Serialize)]
pub struct SnippetReport {
    pub ok: bool,
    pub zones: usize,
    pub lines: usize,
    pub problems: Vec<SnippetProblem>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Line of the `n`th (0-based) `[[cameras.<table>]]` header in the snippet.
fn header_line(text: &str, table: &str, n: usize) -> Option<usize> {
    let header = format!("[[cameras.{table}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&header))
        .nth(n)
        .map(|(i, _)| i + 1)
}

/// Parses `text` and checks the camera with its zones and lines replaced by the snippet's (its
/// rules kept, so a rule whose zone was removed is reported).
pub fn check_snippet(cam: &CameraConfig, text: &str) -> SnippetReport {
    let parsed: Snippet = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|r| line_col(text, r.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            return SnippetReport {
                ok: false,
                zones: 0,
                lines: 0,
                problems: vec![SnippetProblem {
                    line,
                    column,
                    at: String::new(),
                    message: e.message().to_string(),
                    hint: "write [[cameras.zones]] and [[cameras.lines]] tables as in configs/junction-rules.toml".into(),
                }],
            };
        }
    };
    let mut trial = cam.clone();
    trial.zones = parsed.cameras.zones;
    trial.lines = parsed.cameras.lines;
    let problems: Vec<SnippetProblem> = crate::rules::check_camera(&trial.geometry())
        .into_iter()
        .map(|p| {
            let mut at = String::new();
            for a in &p.at {
                match a {
                    At::Key(k) if at.is_empty() => at.push_str(k),
                    At::Key(k) => {
                        at.push('.');
                        at.push_str(k);
                    }
                    At::Index(i) => at.push_str(&format!("[{i}]")),
                }
            }
            let line = match p.at.as_slice() {
                [At::Key(t @ ("zones" | "lines")), At::Index(i), ..] => header_line(text, t, *i),
                _ => None,
            };
            SnippetProblem {
                line,
                column: line.map(|_| 1),
                at,
                message: p.message,
                hint: p.hint,
            }
        })
        .collect();
    SnippetReport {
        ok: problems.is_empty(),
        zones: trial.zones.len(),
        lines: trial.lines.len(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> CameraConfig {
        toml::from_str(
            "id = \"c\"\nurl = \"x\"\nframe_size = [640, 480]\n[[rules]]\nid = \"r\"\nkind = \"intrusion\"\nzone = \"yard\"\n",
        )
        .unwrap()
    }

    #[test]
    fn a_good_snippet_passes() {
        let text = "[[cameras.zones]]\nid = \"yard\"\npolygon = [[10, 10], [200, 10], [200, 200]]\n\n[[cameras.lines]]\nid = \"gate\"\npoints = [[0, 300], [600, 300]]\n";
        let r = check_snippet(&cam(), text);
        assert!(r.ok, "{:?}", r.problems);
        assert_eq!((r.zones, r.lines), (1, 1));
    }

    #[test]
    fn problems_point_into_the_snippet() {
        // Outside the 640x480 frame; and the rule's zone `yard` is gone.
        let text =
            "[[cameras.zones]]\nid = \"other\"\npolygon = [[10, 10], [900, 10], [200, 200]]\n";
        let r = check_snippet(&cam(), text);
        assert!(!r.ok);
        let outside = r
            .problems
            .iter()
            .find(|p| p.at.starts_with("zones[0]"))
            .expect("the zone outside the frame is reported");
        assert_eq!(outside.line, Some(1));
        assert!(
            r.problems.iter().any(|p| p.message.contains("yard")),
            "{:?}",
            r.problems
        );

        let r = check_snippet(&cam(), "[[cameras.zones]]\nid = \"z\"\npolygon = 3\n");
        assert!(!r.ok);
        assert_eq!(r.problems[0].line, Some(3), "{:?}", r.problems);
    }
}
