//! The JSON spoken between the page and the server. Every message is an
//! object with a `type` field.
//!
//! Page to server:
//! - `{"type":"join","name":"Ada","client":"k3x…"}` first, once: `client` is
//!   a random id the page keeps in `localStorage`, so that its own messages
//!   (history included) can be told apart after a reconnect;
//! - `{"type":"message","text":"hi","id":"m7"}`: `id` is the page's own
//!   label, echoed back so that a message queued while offline is marked
//!   delivered once the server has it.
//!
//! Server to page: `welcome` (history and who is online), `message`, `join`,
//! `leave`, `online` and `error`. A `join` under a name that another client
//! id uses in the room (any case, see [`name_taken`]) is answered with
//! `{"type":"error","code":"name_taken","error":"the name \"Ada\" is taken; …"}`;
//! the page stays connected, not joined, and may join under another name.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest accepted name, in characters.
pub const MAX_NAME: usize = 32;
/// Longest accepted chat message, in characters.
pub const MAX_TEXT: usize = 4000;
/// Longest accepted client or message label.
pub const MAX_LABEL: usize = 64;
/// Largest JSON text accepted from a page, in bytes; anything larger gets an
/// error back (the WebSocket itself closes with 1009 above `MAX_FRAME`).
pub const MAX_JSON: usize = 24 * 1024;
/// Messages kept and sent to each page that joins.
pub const HISTORY: usize = 100;

/// What a page may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Incoming {
    Join {
        name: String,
        #[serde(default)]
        client: String,
    },
    Message {
        text: String,
        #[serde(default)]
        id: Option<String>,
    },
}

/// What the room carries between clients (and, with `--redis`, between
/// processes): the server fills in the time and the sender.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Message {
        /// Unique across processes: `SERVER-SEQUENCE`.
        id: String,
        name: String,
        client: String,
        text: String,
        /// Milliseconds since the Unix epoch, by the server's clock.
        time: u64,
        /// The sender page's label for it, if it gave one.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        label: Option<String>,
    },
    Join {
        name: String,
        client: String,
        time: u64,
    },
    Leave {
        name: String,
        client: String,
        time: u64,
    },
}

/// Someone in the room.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub name: String,
    pub client: String,
}

/// The online list: one entry per page (a person with two tabs counts twice
/// in `connections`, once in `count`).
#[derive(Serialize)]
pub struct Online<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub count: usize,
    pub connections: usize,
    pub members: &'a [Member],
}

/// The JSON text of the `welcome` sent to a page once it has joined:
/// `{"type":"welcome","name":…,"server":…,"history":[…],"max_text":…}`.
/// `history` holds JSON texts as the room stores them; each one that is a
/// JSON object goes in as it is (no parse into a tree and back, which for a
/// thousand joins of a hundred messages each is much copying and many small
/// allocations), anything else is left out.
pub fn welcome_json(name: &str, server: &str, history: &[String]) -> Result<String, String> {
    let quoted = |s: &str| serde_json::to_string(s).map_err(|e| e.to_string());
    let valid = |t: &&String| {
        t.trim_start().starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(t.as_str()).is_ok()
    };
    let size: usize = history.iter().map(|t| t.len() + 1).sum();
    let mut out = String::with_capacity(96 + name.len() + server.len() + size);
    out.push_str(r#"{"type":"welcome","name":"#);
    out.push_str(&quoted(name)?);
    out.push_str(r#","server":"#);
    out.push_str(&quoted(server)?);
    out.push_str(r#","history":["#);
    for (i, text) in history.iter().filter(valid).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(text);
    }
    out.push_str(r#"],"max_text":"#);
    out.push_str(&MAX_TEXT.to_string());
    out.push('}');
    Ok(out)
}

/// A refusal: the connection stays open unless the page never joined.
#[derive(Serialize)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'a str,
    pub error: String,
}

/// Builds the JSON text of an error message.
pub fn error_json(code: &str, error: impl Into<String>) -> String {
    let problem = Problem {
        kind: "error",
        code,
        error: error.into(),
    };
    serde_json::to_string(&problem).unwrap_or_else(|_| r#"{"type":"error"}"#.to_owned())
}

/// Parses one text message from a page; `Err` is the error JSON to send back.
pub fn parse(text: &str) -> Result<Incoming, String> {
    if text.len() > MAX_JSON {
        return Err(error_json(
            "too_large",
            format!(
                "message of {} bytes is over the limit of {MAX_JSON}",
                text.len()
            ),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| error_json("bad_json", format!("not JSON: {e}")))?;
    let kind = value.get("type").and_then(|t| t.as_str());
    match kind {
        Some("join" | "message") => {}
        Some(other) => {
            return Err(error_json(
                "unknown_type",
                format!("unknown message type {other:?} (expected \"join\" or \"message\")"),
            ))
        }
        None => return Err(error_json("no_type", "a message needs a string \"type\"")),
    }
    let incoming: Incoming =
        serde_json::from_value(value).map_err(|e| error_json("bad_message", e.to_string()))?;
    match &incoming {
        Incoming::Join { name, client } => {
            check_name(name).map_err(|e| error_json("bad_name", e))?;
            check_label(client).map_err(|e| error_json("bad_client", e))?;
        }
        Incoming::Message { text, id } => {
            check_text(text).map_err(|e| error_json("bad_text", e))?;
            if let Some(id) = id {
                check_label(id).map_err(|e| error_json("bad_id", e))?;
            }
        }
    }
    Ok(incoming)
}

/// A name is 1 to `MAX_NAME` characters once trimmed, with no control
/// characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("name is empty".to_owned());
    }
    let chars = trimmed.chars().count();
    if chars > MAX_NAME {
        return Err(format!(
            "name is {chars} characters long; at most {MAX_NAME}"
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("name contains control characters".to_owned());
    }
    if trimmed != name {
        return Err("name starts or ends with spaces".to_owned());
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("message is empty".to_owned());
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT {
        return Err(format!(
            "message is {chars} characters long; at most {MAX_TEXT}"
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("message contains control characters".to_owned());
    }
    Ok(())
}

/// Labels (client ids, message ids) are short ASCII letters, digits, `-`, `_`.
fn check_label(label: &str) -> Result<(), String> {
    if label.len() > MAX_LABEL {
        return Err(format!("id is longer than {MAX_LABEL} bytes"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("id may hold only letters, digits, '-' and '_'".to_owned());
    }
    Ok(())
}

/// Whether a page with client id `client` may not join as `name` because one
/// of `members` holds that name under another client id. Names compare
/// without regard to case (`Ada` and `ADA` are one name); the pages of one
/// client id (the tabs of one browser) share their name. A page without a
/// client id shares with no one.
pub fn name_taken<'a>(
    members: impl IntoIterator<Item = &'a Member>,
    name: &str,
    client: &str,
) -> bool {
    let wanted = name.to_lowercase();
    members
        .into_iter()
        .any(|m| (client.is_empty() || m.client != client) && m.name.to_lowercase() == wanted)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> String {
        match parse(text) {
            Ok(_) => "ok".to_owned(),
            Err(json) => {
                let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                assert_eq!(v["type"], "error");
                v["code"].as_str().unwrap_or("?").to_owned()
            }
        }
    }

    fn member(name: &str, client: &str) -> Member {
        Member {
            name: name.to_owned(),
            client: client.to_owned(),
        }
    }

    #[test]
    fn a_name_belongs_to_one_client() {
        let room = [member("Ada", "c-ada"), member("Bob", "c-bob")];
        // Another client: refused, whatever the case.
        assert!(name_taken(&room, "Ada", "c-eve"));
        assert!(name_taken(&room, "ada", "c-eve"));
        assert!(name_taken(&room, "ADA", "c-eve"));
        assert!(name_taken(&[member("école", "y")], "ÉCOLE", "x"));
        // The same client (a second tab) shares its name, in any case.
        assert!(!name_taken(&room, "Ada", "c-ada"));
        assert!(!name_taken(&room, "aDA", "c-ada"));
        // A free name, or an empty room.
        assert!(!name_taken(&room, "Cy", "c-eve"));
        assert!(!name_taken(&room, "Ad", "c-eve"));
        assert!(!name_taken(&[], "Ada", "c-eve"));
        // Without a client id nobody can prove to be the holder.
        assert!(name_taken(&[member("Ada", "")], "Ada", ""));
    }

    #[test]
    fn the_welcome_carries_the_stored_history_as_it_is() {
        let history = [
            r#"{"type":"message","id":"s-1","text":"hi \"you\""}"#.to_owned(),
            "not json".to_owned(),
            r#"{"type":"message","id":"s-2"} trailing"#.to_owned(),
            "[1,2]".to_owned(),
            r#"{"type":"message","id":"s-3","text":"ü"}"#.to_owned(),
        ];
        let text = welcome_json("Ada \"A\"", "srv", &history).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "welcome");
        assert_eq!(v["name"], "Ada \"A\"");
        assert_eq!(v["server"], "srv");
        assert_eq!(v["max_text"], MAX_TEXT);
        let ids: Vec<&str> = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["s-1", "s-3"]);
        assert_eq!(v["history"][0]["text"], "hi \"you\"");
        let empty: serde_json::Value =
            serde_json::from_str(&welcome_json("B", "s", &[]).unwrap()).unwrap();
        assert_eq!(empty["history"], serde_json::json!([]));
    }

    #[test]
    fn validates_what_pages_send() {
        assert_eq!(code(r#"{"type":"join","name":"Ada","client":"c-1"}"#), "ok");
        assert_eq!(code(r#"{"type":"message","text":"hi","id":"m1"}"#), "ok");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"text":"hi"}"#), "no_type");
        assert_eq!(code("nope"), "bad_json");
        assert_eq!(code(r#"{"type":"join","name":""}"#), "bad_name");
        assert_eq!(code(r#"{"type":"join","name":"a\u0007b"}"#), "bad_name");
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(
            code(&format!(r#"{{"type":"join","name":"{long}"}}"#)),
            "bad_name"
        );
        assert_eq!(
            code(r#"{"type":"join","name":"Ada","client":"a b"}"#),
            "bad_client"
        );
        assert_eq!(code(r#"{"type":"message","text":"  "}"#), "bad_text");
        let huge = "x".repeat(MAX_JSON);
        assert_eq!(
            code(&format!(r#"{{"type":"message","text":"{huge}"}}"#)),
            "too_large"
        );
        assert_eq!(
            code(r#"{"type":"message","text":"hi","extra":1}"#),
            "bad_message"
        );
    }
}
