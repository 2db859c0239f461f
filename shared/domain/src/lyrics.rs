//! Lyric Studio: the brief of `POST /api/lyrics`, the song structure the model must follow (as a
//! JSON schema for the model and as a check in code), and the user's edits of `PUT /api/lyrics/{id}`.

use super::generation::{bounded, MAX_GENRE_CHARS, MAX_TITLE_CHARS};
use super::DomainError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const MAX_THEME_CHARS: usize = 500;
pub const MAX_MOOD_CHARS: usize = 40;
pub const MAX_SECTIONS: usize = 12;
/// Lines of one section, and characters of one line: enough for any song, small enough that a
/// draft with all its versions stays far below DynamoDB's item size.
pub const MAX_LINES: usize = 24;
pub const MAX_LINE_CHARS: usize = 200;
/// The default structure: verse, chorus, verse, chorus, bridge, chorus.
pub const DEFAULT_STRUCTURE: [SectionKind; 6] = [
    SectionKind::Verse,
    SectionKind::Chorus,
    SectionKind::Verse,
    SectionKind::Chorus,
    SectionKind::Bridge,
    SectionKind::Chorus,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Intro,
    Verse,
    PreChorus,
    Chorus,
    Bridge,
    Outro,
}

impl SectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intro => "intro",
            Self::Verse => "verse",
            Self::PreChorus => "pre_chorus",
            Self::Chorus => "chorus",
            Self::Bridge => "bridge",
            Self::Outro => "outro",
        }
    }
}

/// One section of a song: its kind and its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub kind: SectionKind,
    pub lines: Vec<String>,
}

/// A title and sections: what the model writes and what an edit sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub title: String,
    pub sections: Vec<Section>,
}

/// The body of `POST /api/lyrics`, as sent; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LyricsRequest {
    pub theme: String,
    #[serde(default)]
    pub genre: Option<String>,
    #[serde(default)]
    pub mood: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub structure: Option<Vec<SectionKind>>,
}

/// A brief whose every field is within bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Brief {
    pub theme: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mood: Option<String>,
    pub language: String,
    pub structure: Vec<SectionKind>,
}

fn trimmed(value: Option<String>) -> Option<String> {
    value
        .map(|v| super::trim_text(&v).to_owned())
        .filter(|v| !v.is_empty())
}

/// A BCP 47 language tag in its common shape: a 2–3 letter language and optional subtags
/// (`en`, `es-MX`, `pt-BR`, `zh-Hant-TW`).
fn language_tag(raw: &str) -> bool {
    let mut parts = raw.split('-');
    let first = parts.next().unwrap_or_default();
    raw.len() <= 35
        && (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl TryFrom<LyricsRequest> for Brief {
    type Error = DomainError;

    fn try_from(req: LyricsRequest) -> Result<Self, DomainError> {
        let theme = super::trim_text(&req.theme).to_owned();
        let length = theme.chars().count();
        if length == 0 || length > MAX_THEME_CHARS {
            return Err(DomainError::new(
                "theme",
                format!("must be 1 to {MAX_THEME_CHARS} characters"),
            ));
        }
        let genre =
            trimmed(bounded("genre", req.genre, MAX_GENRE_CHARS)?).map(|g| g.to_lowercase());
        let mood = trimmed(bounded("mood", req.mood, MAX_MOOD_CHARS)?);
        // Exactly a tag, as openapi.yaml's pattern says: "" or " en" are refused, not defaulted.
        let language = match req.language {
            None => "en".to_owned(),
            Some(tag) if language_tag(&tag) => tag,
            Some(_) => {
                return Err(DomainError::new(
                    "language",
                    "must be a BCP 47 language tag such as en or es-MX",
                ))
            }
        };
        let structure = req.structure.unwrap_or_else(|| DEFAULT_STRUCTURE.to_vec());
        if structure.is_empty() || structure.len() > MAX_SECTIONS {
            return Err(DomainError::new(
                "structure",
                format!("must list 1 to {MAX_SECTIONS} sections"),
            ));
        }
        Ok(Self {
            theme,
            genre,
            mood,
            language,
            structure,
        })
    }
}

/// How the model is told to write (a new way of writing is a new file, `lyrics-v2.md`).
pub const WRITER: &str = include_str!("../prompts/lyrics-v1.md");

impl Brief {
    /// The conversation that asks for a draft: the writer's instructions, then the brief as data.
    pub fn messages(&self) -> Vec<crate::assist::Message> {
        use crate::assist::{Message, Role};
        let brief = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        vec![
            Message::new(Role::System, WRITER),
            Message::new(Role::User, format!("Brief: {brief}")),
        ]
    }

    /// The JSON schema of the model's answer (Ollama's `format`): a title and exactly these
    /// sections, in this order.
    pub fn schema(&self) -> Value {
        let sections: Vec<Value> = self
            .structure
            .iter()
            .map(|kind| {
                json!({
                    "type": "object",
                    "required": ["kind", "lines"],
                    "properties": {
                        "kind": {"const": kind.as_str()},
                        "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES,
                                  "items": {"type": "string", "maxLength": MAX_LINE_CHARS}}
                    }
                })
            })
            .collect();
        json!({
            "type": "object",
            "required": ["title", "sections"],
            "properties": {
                "title": {"type": "string", "maxLength": MAX_TITLE_CHARS},
                "sections": {"type": "array", "minItems": sections.len(),
                             "maxItems": sections.len(), "prefixItems": sections, "items": false}
            }
        })
    }

    /// Whether the model's draft follows the brief: the structure in order, every section with
    /// 1 to `MAX_LINES` lines, every line and the title within bounds.
    pub fn check(&self, draft: &Draft) -> Result<(), String> {
        let kinds: Vec<SectionKind> = draft.sections.iter().map(|s| s.kind).collect();
        if kinds != self.structure {
            return Err(format!(
                "sections {:?}, asked {:?}",
                kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                self.structure
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
            ));
        }
        if draft.sections.iter().any(|s| s.lines.is_empty()) {
            return Err("a section has no lines".to_owned());
        }
        check_text(draft).map_err(|err| err.to_string())
    }
}

/// Bounds every draft keeps, written by the model or edited: a title, at most `MAX_SECTIONS`
/// sections of at most `MAX_LINES` lines of at most `MAX_LINE_CHARS` characters.
fn check_text(draft: &Draft) -> Result<(), DomainError> {
    let title = super::trim_text(&draft.title).chars().count();
    if title == 0 || title > MAX_TITLE_CHARS {
        return Err(DomainError::new(
            "title",
            format!("must be 1 to {MAX_TITLE_CHARS} characters"),
        ));
    }
    if draft.sections.is_empty() || draft.sections.len() > MAX_SECTIONS {
        return Err(DomainError::new(
            "sections",
            format!("must hold 1 to {MAX_SECTIONS} sections"),
        ));
    }
    for section in &draft.sections {
        if section.lines.len() > MAX_LINES {
            return Err(DomainError::new(
                "sections",
                format!("a section holds at most {MAX_LINES} lines"),
            ));
        }
        if section
            .lines
            .iter()
            .any(|line| line.chars().count() > MAX_LINE_CHARS)
        {
            return Err(DomainError::new(
                "sections",
                format!("a line holds at most {MAX_LINE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// The draft as stored: title and lines trimmed.
pub fn tidy(draft: Draft) -> Draft {
    Draft {
        title: super::trim_text(&draft.title).to_owned(),
        sections: draft
            .sections
            .into_iter()
            .map(|s| Section {
                kind: s.kind,
                lines: s
                    .lines
                    .into_iter()
                    .map(|l| super::trim_text(&l).to_owned())
                    .collect(),
            })
            .collect(),
    }
}

/// The body of `PUT /api/lyrics/{id}`; unknown fields are ignored. Without `title` the title stays.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EditRequest {
    #[serde(default)]
    pub title: Option<String>,
    pub sections: Vec<Section>,
}

/// An edit applied to the current title: the new draft, checked.
pub fn edited(request: EditRequest, current_title: &str) -> Result<Draft, DomainError> {
    let draft = tidy(Draft {
        title: request.title.unwrap_or_else(|| current_title.to_owned()),
        sections: request.sections,
    });
    check_text(&draft)?;
    Ok(draft)
}

/// `If-Match: <version>`: a plain number, or one in quotes as an entity tag would be (`"3"`, weak
/// `W/"3"`), from 1 to 999,999,999 (openapi.yaml's pattern, said once more here).
pub fn parse_if_match(raw: &str) -> Result<u32, DomainError> {
    let tag = raw.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let digits = match tag.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"'),
        None => Some(tag),
    };
    digits
        .filter(|d| (1..=9).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .filter(|d| !d.starts_with('0'))
        .and_then(|d| d.parse::<u32>().ok())
        .ok_or_else(|| DomainError::new("If-Match", "must be the version being edited, e.g. 3"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(body: &str) -> Result<Brief, DomainError> {
        Brief::try_from(serde_json::from_str::<LyricsRequest>(body).unwrap())
    }

    fn draft(kinds: &[SectionKind]) -> Draft {
        Draft {
            title: "Neon".into(),
            sections: kinds
                .iter()
                .map(|k| Section {
                    kind: *k,
                    lines: vec!["a line".into()],
                })
                .collect(),
        }
    }

    #[test]
    fn a_brief_gets_its_defaults_and_bounds() {
        let b = brief(r#"{"theme":"  rain on neon  ","genre":" Synthwave "}"#).unwrap();
        assert_eq!(b.theme, "rain on neon");
        assert_eq!(b.genre.as_deref(), Some("synthwave"));
        assert_eq!(b.language, "en");
        assert_eq!(b.structure, DEFAULT_STRUCTURE);
        for (body, field) in [
            (r#"{"theme":"   "}"#, "theme"),
            (&format!(r#"{{"theme":"{}"}}"#, "x".repeat(501)), "theme"),
            (r#"{"theme":"t","structure":[]}"#, "structure"),
            (r#"{"theme":"t","language":"english please"}"#, "language"),
            (r#"{"theme":"t","language":""}"#, "language"),
            (r#"{"theme":"t","language":" en"}"#, "language"),
            (r#"{"theme":"t","language":"e"}"#, "language"),
            (
                &format!(r#"{{"theme":"t","mood":"{}"}}"#, "m".repeat(41)),
                "mood",
            ),
        ] {
            assert_eq!(brief(body).unwrap_err().field, field, "{body}");
        }
        let many = format!(
            r#"{{"theme":"t","structure":[{}]}}"#,
            ["\"verse\""; 13].join(",")
        );
        assert_eq!(brief(&many).unwrap_err().field, "structure");
        assert_eq!(
            brief(r#"{"theme":"t","language":"es-MX"}"#)
                .unwrap()
                .language,
            "es-MX"
        );
        assert!(
            serde_json::from_str::<LyricsRequest>(r#"{"theme":"t","structure":["hook"]}"#).is_err()
        );
    }

    #[test]
    fn a_draft_must_follow_the_structure_in_order() {
        let b = brief(r#"{"theme":"t","structure":["intro","verse","chorus"]}"#).unwrap();
        use SectionKind::*;
        assert!(b.check(&draft(&[Intro, Verse, Chorus])).is_ok());
        assert!(b.check(&draft(&[Verse, Intro, Chorus])).is_err());
        assert!(b.check(&draft(&[Intro, Verse])).is_err());
        let mut empty = draft(&[Intro, Verse, Chorus]);
        empty.sections[1].lines.clear();
        assert!(b.check(&empty).is_err());
        let mut long = draft(&[Intro, Verse, Chorus]);
        long.sections[0].lines[0] = "x".repeat(201);
        assert!(b.check(&long).is_err());
        let schema = b.schema();
        assert_eq!(schema["properties"]["sections"]["maxItems"], 3);
        assert_eq!(
            schema["properties"]["sections"]["prefixItems"][2]["properties"]["kind"]["const"],
            "chorus"
        );
    }

    #[test]
    fn an_edit_keeps_the_title_unless_given_and_is_bounded() {
        let req = |body: &str| serde_json::from_str::<EditRequest>(body).unwrap();
        let d = edited(
            req(r#"{"sections":[{"kind":"verse","lines":[" one "]}]}"#),
            "Old",
        )
        .unwrap();
        assert_eq!(
            (d.title.as_str(), d.sections[0].lines[0].as_str()),
            ("Old", "one")
        );
        assert_eq!(
            edited(
                req(r#"{"title":" ","sections":[{"kind":"verse","lines":[]}]}"#),
                "Old"
            )
            .unwrap_err()
            .field,
            "title"
        );
        assert_eq!(
            edited(req(r#"{"sections":[]}"#), "Old").unwrap_err().field,
            "sections"
        );
    }

    #[test]
    fn if_match_is_a_version_number() {
        assert_eq!(parse_if_match("3"), Ok(3));
        assert_eq!(parse_if_match("\"3\""), Ok(3));
        assert_eq!(parse_if_match("W/\"12\""), Ok(12));
        for bad in [
            "",
            "0",
            "-1",
            "abc",
            "*",
            "W/3\"",
            "\"3",
            "03",
            "+3",
            "1000000000",
            "W/\"\"",
        ] {
            assert!(parse_if_match(bad).is_err(), "{bad}");
        }
    }
}
