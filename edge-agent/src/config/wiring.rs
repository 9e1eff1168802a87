//! What the aggregate hands the stages: each stage's settings built from its own sections, with
//! the file's relative paths resolved, so no stage needs the whole config.

use chrono::Utc;

use super::LoadedConfig;
use crate::events::status::StatusInfo;
use crate::publish::settings::{MqttSettings, SettingsError};
use crate::publish::{DeliveryError, DeliveryOptions};

impl LoadedConfig {
    /// `[mqtt]` as the publisher's connection settings (TLS and password files read).
    pub fn mqtt_settings(&self) -> Result<MqttSettings, SettingsError> {
        MqttSettings::from_section(&self.config.mqtt, &self.config.device.device_id, &|p| {
            self.resolve_path(p)
        })
    }

    /// `[mqtt]` and `[storage]` as the delivery's options.
    pub fn delivery_options(&self) -> Result<DeliveryOptions, DeliveryError> {
        let d = &self.config.device;
        DeliveryOptions::from_sections(
            &self.config.mqtt,
            &self.config.storage,
            (&d.site_id, &d.device_id),
            &|p| self.resolve_path(p),
        )
    }
}

impl LoadedConfig {
    /// The birth message's fields that come from the config and this process; the pipeline adds
    /// the models and the provider.
    pub fn birth(&self) -> StatusInfo {
        let c = &self.config;
        StatusInfo {
            state: "online".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            site_id: c.device.site_id.clone(),
            device_id: c.device.device_id.clone(),
            models: Vec::new(),
            config_hash: self.hash(),
            execution_provider: c.runtime.execution_provider.as_str().into(),
            inference_backend: c.runtime.backend.as_str().into(),
            cameras: c
                .cameras
                .iter()
                .filter(|cam| cam.enabled)
                .map(|cam| cam.id.clone())
                .collect(),
            started_at: Some(Utc::now()),
            model_cards: Vec::new(),
            device_key: None,
        }
    }
}
