//! The room: who is connected to this process (the hub), the recent history,
//! and, with `--redis`, the other processes serving the same room.
//!
//! Without Redis an event goes straight to the local hub and the history is
//! a ring in memory. With Redis every event is published on one channel;
//! each process (this one included) gets it from its subscription and hands
//! it to its own hub, so every page sees every event once. The history is a
//! Redis list trimmed to the last `HISTORY` messages, and who is online is
//! one Redis hash per process, refreshed with a TTL so that a process that
//! died without cleaning up drops out of the list within `PRESENCE_TTL`.

use crate::protocol::{Event, Member, Online, HISTORY};
use futures_util::StreamExt;
use redis::AsyncCommands;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Messages queued per page before it counts as too slow.
pub const QUEUE: usize = 256;

const CHANNEL: &str = "wsproto-chat:events";
const HISTORY_KEY: &str = "wsproto-chat:history";
const PRESENCE_PREFIX: &str = "wsproto-chat:online:";
const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// The online list goes out at most this often: with a thousand pages, one
/// list per join would be a million lists.
const ONLINE_EVERY: Duration = Duration::from_millis(500);
/// Entries in the online list (the count covers everyone).
const ONLINE_SHOWN: usize = 100;

/// A page connected to this process.
struct Client {
    tx: mpsc::Sender<Arc<str>>,
    member: Option<Member>,
    /// Woken when the page is dropped, so that a send stuck on its full TCP
    /// window gives up at once.
    kick: Arc<Notify>,
}

/// The pages connected to this process.
#[derive(Default)]
pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    next: AtomicU64,
    /// Someone joined or left: the online list is due (see `announce_online`).
    presence: Notify,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a page that has not joined yet (it gets nothing until then).
    pub fn connect(&self) -> (u64, mpsc::Receiver<Arc<str>>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Notify::new());
        let client = Client {
            tx,
            member: None,
            kick: kick.clone(),
        };
        self.lock().insert(id, client);
        (id, rx, kick)
    }

    /// Marks the page as joined: from now on it gets the room's events.
    fn join(&self, id: u64, member: Member) {
        if let Some(client) = self.lock().get_mut(&id) {
            client.member = Some(member);
        }
    }

    /// Forgets the page; returns who it was if it had joined.
    pub fn disconnect(&self, id: u64) -> Option<Member> {
        self.lock().remove(&id).and_then(|c| c.member)
    }

    /// Queues `text` for every joined page. A page whose queue is full is
    /// dropped from the hub: its sender goes away, and its task closes it.
    /// Returns the ids of the dropped pages.
    pub fn broadcast(&self, text: &str) -> Vec<(u64, Member)> {
        let text: Arc<str> = text.into();
        let mut dropped = Vec::new();
        self.lock().retain(|id, client| {
            let Some(member) = &client.member else {
                return true;
            };
            if client.tx.try_send(text.clone()).is_ok() {
                true
            } else {
                client.kick.notify_one();
                dropped.push((*id, member.clone()));
                false
            }
        });
        dropped
    }

    /// Who has joined on this process.
    fn members(&self) -> Vec<Member> {
        self.lock()
            .values()
            .filter_map(|c| c.member.clone())
            .collect()
    }

    /// Whether no page is connected.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every page (each task then closes its socket).
    pub fn clear(&self) -> Vec<Member> {
        self.lock().drain().filter_map(|(_, c)| c.member).collect()
    }
}

/// Where events and history live.
pub enum Room {
    Local {
        hub: Arc<Hub>,
        history: Mutex<VecDeque<Arc<str>>>,
    },
    Redis {
        hub: Arc<Hub>,
        server: String,
        conn: redis::aio::MultiplexedConnection,
    },
}

/// Messages of a room operation that failed (Redis unreachable).
pub type RoomError = String;

impl Room {
    /// The in-process room.
    pub fn local(hub: Arc<Hub>) -> Room {
        Room::Local {
            hub,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// The room shared through Redis at `url`: connects, subscribes, and
    /// starts the tasks that relay events to `hub` and keep this process's
    /// presence alive.
    pub async fn redis(hub: Arc<Hub>, url: &str, server: String) -> Result<Arc<Room>, RoomError> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url}: {e}"))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| format!("cannot subscribe on Redis at {url}: {e}"))?;
        pubsub
            .subscribe(CHANNEL)
            .await
            .map_err(|e| format!("cannot subscribe on Redis at {url}: {e}"))?;
        let room = Arc::new(Room::Redis {
            hub: hub.clone(),
            server,
            conn,
        });
        let relay = room.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(text) = msg.get_payload::<String>() else {
                    continue;
                };
                relay.deliver(&text).await;
            }
            eprintln!("chat_server: lost the Redis subscription; exiting");
            std::process::exit(1);
        });
        let keeper = room.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRESENCE_TTL / 3).await;
                if let Err(e) = keeper.refresh_presence().await {
                    eprintln!("chat_server: {e}");
                }
            }
        });
        Ok(room)
    }

    fn hub(&self) -> &Arc<Hub> {
        match self {
            Room::Local { hub, .. } | Room::Redis { hub, .. } => hub,
        }
    }

    /// Adds a connected page to the room and returns what its welcome needs:
    /// the history (oldest first). Announces the join to everyone.
    pub async fn join(&self, id: u64, member: Member) -> Result<Vec<serde_json::Value>, RoomError> {
        self.hub().join(id, member.clone());
        let history = self.history().await?;
        let event = Event::Join {
            name: member.name,
            client: member.client,
            time: crate::protocol::now_ms(),
        };
        if let Room::Redis { .. } = self {
            self.refresh_presence().await?;
        }
        self.publish(&event).await?;
        Ok(history)
    }

    /// Announces that a page left (it is already out of the hub).
    pub async fn leave(&self, member: Member) -> Result<(), RoomError> {
        if let Room::Redis { .. } = self {
            self.refresh_presence().await?;
        }
        let event = Event::Leave {
            name: member.name,
            client: member.client,
            time: crate::protocol::now_ms(),
        };
        self.publish(&event).await
    }

    /// Sends an event to every page of the room (and keeps messages in the
    /// history).
    pub async fn publish(&self, event: &Event) -> Result<(), RoomError> {
        let text = serde_json::to_string(event).map_err(|e| e.to_string())?;
        match self {
            Room::Local { history, .. } => {
                if let Event::Message { .. } = event {
                    let mut history = history.lock().unwrap_or_else(|e| e.into_inner());
                    if history.len() == HISTORY {
                        history.pop_front();
                    }
                    history.push_back(text.as_str().into());
                }
                self.deliver(&text).await;
                Ok(())
            }
            Room::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let mut pipe = redis::pipe();
                if let Event::Message { .. } = event {
                    pipe.rpush(HISTORY_KEY, &text)
                        .ignore()
                        .ltrim(HISTORY_KEY, -(HISTORY as isize), -1)
                        .ignore();
                }
                pipe.publish(CHANNEL, &text).ignore();
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| format!("Redis: {e}"))
            }
        }
    }

    /// Hands an event to this process's pages; a join or leave makes the
    /// online list due.
    async fn deliver(&self, text: &str) {
        let hub = self.hub();
        let dropped = hub.broadcast(text);
        let changes_presence =
            text.starts_with(r#"{"type":"join""#) || text.starts_with(r#"{"type":"leave""#);
        if changes_presence || !dropped.is_empty() {
            hub.presence.notify_one();
        }
        for (id, member) in dropped {
            eprintln!(
                "dropped page {id} ({}): its send queue is full",
                member.name
            );
        }
    }

    /// The JSON online list of the whole room.
    pub async fn online(&self) -> Result<String, RoomError> {
        let mut members = match self {
            Room::Local { hub, .. } => hub.members(),
            Room::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let keys: Vec<String> = conn
                    .keys(format!("{PRESENCE_PREFIX}*"))
                    .await
                    .map_err(|e| format!("Redis: {e}"))?;
                let mut members = Vec::new();
                for key in keys {
                    let values: Vec<String> =
                        conn.hvals(&key).await.map_err(|e| format!("Redis: {e}"))?;
                    members.extend(
                        values
                            .iter()
                            .filter_map(|v| serde_json::from_str::<Member>(v).ok()),
                    );
                }
                members
            }
        };
        members.sort();
        let connections = members.len();
        members.dedup_by(|a, b| a.client == b.client && a.name == b.name);
        let online = Online {
            kind: "online",
            count: members.len(),
            connections,
            members: &members[..members.len().min(ONLINE_SHOWN)],
        };
        serde_json::to_string(&online).map_err(|e| e.to_string())
    }

    /// The history, oldest first.
    async fn history(&self) -> Result<Vec<serde_json::Value>, RoomError> {
        let texts: Vec<String> = match self {
            Room::Local { history, .. } => history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|t| t.to_string())
                .collect(),
            Room::Redis { conn, .. } => {
                let mut conn = conn.clone();
                conn.lrange(HISTORY_KEY, 0, -1)
                    .await
                    .map_err(|e| format!("Redis: {e}"))?
            }
        };
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    /// Rewrites this process's presence hash from its hub, with a fresh TTL.
    async fn refresh_presence(&self) -> Result<(), RoomError> {
        let Room::Redis { hub, server, conn } = self else {
            return Ok(());
        };
        let key = format!("{PRESENCE_PREFIX}{server}");
        let fields: Vec<(String, String)> = hub
            .lock()
            .iter()
            .filter_map(|(id, c)| {
                let member = c.member.as_ref()?;
                Some((id.to_string(), serde_json::to_string(member).ok()?))
            })
            .collect();
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !fields.is_empty() {
            pipe.hset_multiple(&key, &fields)
                .ignore()
                .expire(&key, PRESENCE_TTL.as_secs() as i64)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| format!("Redis: {e}"))
    }

    /// On shutdown: drops the pages still there, tells the room they left,
    /// and removes this process from the online list.
    pub async fn shutdown(&self) {
        let members = self.hub().clear();
        if let Err(e) = self.refresh_presence().await {
            eprintln!("chat_server: {e}");
        }
        if let Room::Redis { .. } = self {
            for member in members {
                if let Err(e) = self.leave(member).await {
                    eprintln!("chat_server: {e}");
                    break;
                }
            }
        }
    }
}

/// Sends the online list to this process's pages after joins and leaves, at
/// most once per `ONLINE_EVERY`.
pub async fn announce_online(room: Arc<Room>) {
    loop {
        room.hub().presence.notified().await;
        tokio::time::sleep(ONLINE_EVERY).await;
        match room.online().await {
            Ok(online) => {
                for (id, member) in room.hub().broadcast(&online) {
                    eprintln!(
                        "dropped page {id} ({}): its send queue is full",
                        member.name
                    );
                    room.hub().presence.notify_one();
                }
            }
            Err(e) => eprintln!("chat_server: {e}"),
        }
    }
}
