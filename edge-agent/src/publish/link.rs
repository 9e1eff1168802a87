//! One MQTT connection attempt, over MQTT 3.1.1 or 5, behind one small interface.
//!
//! Each attempt gets a fresh rumqttc client and event loop; when the connection fails the whole
//! thing is dropped. That is deliberate: rumqttc keeps unacknowledged publishes in an in-memory
//! pending list and clears it when the broker comes back without the session (stack-facts §5), so
//! the spool, not rumqttc, decides what is sent again.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{Outgoing, QoS, TlsConfiguration, Transport};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::MqttProtocol;
use super::settings::{MAX_PACKET, MqttSettings};

/// What the event loop reports, reduced to what the publisher and `watch` need.
#[derive(Debug)]
pub enum LinkEvent {
    Connected {
        session_present: bool,
    },
    /// A publish left with this packet id (in the order they were requested).
    Sent(u16),
    /// The broker acknowledged this packet id.
    Acked(u16),
    /// An incoming message (for subscribers).
    Message {
        topic: String,
        payload: Bytes,
        /// Delivered as the topic's retained message (at subscription), not as a new publish.
        retained: bool,
    },
    /// A subscription was granted or refused.
    SubAck {
        granted: bool,
    },
    /// The connection ended or could not be made; the link is finished.
    Closed(String),
}

enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// A live connection attempt.
pub struct Link {
    client: Client,
    pub events: mpsc::UnboundedReceiver<LinkEvent>,
    task: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn transport(s: &MqttSettings) -> Transport {
    match &s.tls {
        None => Transport::Tcp,
        Some(tls) => Transport::Tls(TlsConfiguration::Simple {
            ca: tls.ca_pem.clone(),
            alpn: None,
            client_auth: tls.client.clone(),
        }),
    }
}

fn qos(at_least_once: bool) -> QoS {
    if at_least_once {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    }
}

fn qos5(at_least_once: bool) -> rumqttc::v5::mqttbytes::QoS {
    if at_least_once {
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce
    } else {
        rumqttc::v5::mqttbytes::QoS::AtMostOnce
    }
}

/// Human text for a connection error (rumqttc's `Display`, or `Debug` when that is empty).
fn describe<E: std::fmt::Display + std::fmt::Debug>(e: &E) -> String {
    let display = e.to_string();
    if display.trim().is_empty() {
        format!("{e:?}")
    } else {
        display
    }
}

/// What to do about a connection error, for the log line an installer reads.
pub fn hint(error: &str) -> &'static str {
    if error.contains("UnknownIssuer") || error.contains("BadSignature") {
        "the broker's certificate is not signed by [mqtt.tls].ca_file; use the CA that signed it"
    } else if error.contains("NotValidForName") {
        "the broker's certificate does not name the host in [mqtt].broker; connect by a name it lists"
    } else if error.contains("CertificateRequired") || error.contains("HandshakeFailure") {
        "the broker wants a client certificate: set [mqtt.tls].client_cert_file and client_key_file"
    } else if error.contains("NotAuthorized") || error.contains("BadUserNamePassword") {
        "the broker refused the credentials: check [mqtt].username, password_file and the broker ACL"
    } else if error.contains("Connection refused") {
        "nothing accepts connections at the broker address; is the broker running and reachable?"
    } else if error.contains("Expired") {
        "a certificate has expired; check the device clock and renew the certificate"
    } else {
        "events stay in the spool and are sent after the next successful connection"
    }
}

impl Link {
    /// Starts connecting; events arrive on `events`. `will` is (topic, payload), retained, QoS 1.
    pub fn connect(s: &MqttSettings, will: Option<(String, Vec<u8>)>) -> Self {
        // rumqttc is built without a default crypto provider; ring is the one already in the tree.
        // Err only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let cap = usize::from(s.max_inflight) + 64;
        let (client, task) = match s.protocol {
            MqttProtocol::V311 => {
                let mut o = rumqttc::MqttOptions::new(&s.client_id, &s.host, s.port);
                o.set_keep_alive(s.keep_alive)
                    .set_clean_session(s.clean_session)
                    .set_inflight(s.max_inflight.max(1))
                    .set_max_packet_size(MAX_PACKET, MAX_PACKET)
                    .set_transport(transport(s));
                if let Some(user) = &s.username {
                    o.set_credentials(user, s.password.clone().unwrap_or_default());
                }
                if let Some((topic, payload)) = will {
                    o.set_last_will(rumqttc::LastWill::new(
                        topic,
                        payload,
                        QoS::AtLeastOnce,
                        true,
                    ));
                }
                let (client, mut el) = rumqttc::AsyncClient::new(o, cap);
                let task = tokio::spawn(async move {
                    loop {
                        let ev = match el.poll().await {
                            Ok(rumqttc::Event::Incoming(p)) => match p {
                                rumqttc::Packet::ConnAck(c) => LinkEvent::Connected {
                                    session_present: c.session_present,
                                },
                                rumqttc::Packet::PubAck(a) => LinkEvent::Acked(a.pkid),
                                rumqttc::Packet::Publish(p) => LinkEvent::Message {
                                    topic: p.topic,
                                    payload: p.payload,
                                    retained: p.retain,
                                },
                                rumqttc::Packet::SubAck(a) => LinkEvent::SubAck {
                                    granted: a.return_codes.iter().all(|c| {
                                        !matches!(c, rumqttc::SubscribeReasonCode::Failure)
                                    }),
                                },
                                _ => continue,
                            },
                            Ok(rumqttc::Event::Outgoing(Outgoing::Publish(pkid))) => {
                                LinkEvent::Sent(pkid)
                            }
                            Ok(_) => continue,
                            Err(e) => {
                                let _ = tx.send(LinkEvent::Closed(describe(&e)));
                                return;
                            }
                        };
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                });
                (Client::V4(client), task)
            }
            MqttProtocol::V5 => {
                use rumqttc::v5::mqttbytes::v5::Packet;
                let mut o = rumqttc::v5::MqttOptions::new(&s.client_id, &s.host, s.port);
                o.set_keep_alive(s.keep_alive)
                    .set_clean_start(s.clean_session)
                    .set_max_packet_size(Some(MAX_PACKET as u32))
                    .set_outgoing_inflight_upper_limit(s.max_inflight.max(1))
                    .set_transport(transport(s));
                if !s.clean_session {
                    // A v5 session only outlives the connection with an expiry interval.
                    o.set_session_expiry_interval(Some(7 * 24 * 3600));
                }
                if let Some(user) = &s.username {
                    o.set_credentials(user, s.password.clone().unwrap_or_default());
                }
                if let Some((topic, payload)) = will {
                    o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
                        topic,
                        payload,
                        qos5(true),
                        true,
                        None,
                    ));
                }
                let (client, mut el) = rumqttc::v5::AsyncClient::new(o, cap);
                let task = tokio::spawn(async move {
                    loop {
                        let ev = match el.poll().await {
                            Ok(rumqttc::v5::Event::Incoming(p)) => match p {
                                Packet::ConnAck(c) => LinkEvent::Connected {
                                    session_present: c.session_present,
                                },
                                Packet::PubAck(a) => LinkEvent::Acked(a.pkid),
                                Packet::Publish(p) => LinkEvent::Message {
                                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                    payload: p.payload,
                                    retained: p.retain,
                                },
                                Packet::SubAck(a) => LinkEvent::SubAck {
                                    granted: a.return_codes.iter().all(|c| {
                                        matches!(
                                            c,
                                            rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                                        )
                                    }),
                                },
                                _ => continue,
                            },
                            Ok(rumqttc::v5::Event::Outgoing(Outgoing::Publish(pkid))) => {
                                LinkEvent::Sent(pkid)
                            }
                            Ok(_) => continue,
                            Err(e) => {
                                let _ = tx.send(LinkEvent::Closed(describe(&e)));
                                return;
                            }
                        };
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                });
                (Client::V5(client), task)
            }
        };
        Self {
            client,
            events: rx,
            task,
        }
    }

    /// Queues a publish without waiting; fails only when the request channel is full.
    pub fn try_publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
        at_least_once: bool,
    ) -> Result<(), String> {
        match &self.client {
            Client::V4(c) => c
                .try_publish(topic, qos(at_least_once), retain, payload)
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_publish(topic, qos5(at_least_once), retain, payload)
                .map_err(|e| e.to_string()),
        }
    }

    /// Subscribes with QoS 1.
    pub async fn subscribe(&self, filter: &str) -> Result<(), String> {
        match &self.client {
            Client::V4(c) => c
                .subscribe(filter, QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .subscribe(filter, qos5(true))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Sends DISCONNECT (so the broker does not publish the last will) and waits briefly for it
    /// to leave.
    pub async fn disconnect(mut self) {
        let r = match &self.client {
            Client::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
        if r.is_ok() {
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while let Some(ev) = self.events.recv().await {
                    if matches!(ev, LinkEvent::Closed(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}
