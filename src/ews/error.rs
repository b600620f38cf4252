//! The one error type of the EWS layer.
//!
//! Policy: transport failures (connect, TLS, timeouts), HTTP statuses, SOAP
//! faults and per-item EWS response codes are kept apart, because callers act
//! on them differently: a transport error or ErrorServerBusy is retried, an
//! ErrorInvalidSyncStateData restarts a sync from scratch, an
//! ErrorItemNotFound is a normal outcome, and a schema error is a bug in resa.
//! Malformed server output is an error value, never a panic.

use std::fmt;
use std::time::Duration;

macro_rules! response_codes {
    ($($name:ident),* $(,)?) => {
        /// EWS `ResponseCode` values that resa's code paths can meet. Codes
        /// not listed are kept verbatim in `Other`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[allow(clippy::enum_variant_names)] // the names are Exchange's
        pub enum ResponseCode {
            $($name,)*
            Other(String),
        }

        impl ResponseCode {
            /// Every named code (not `Other`).
            pub const ALL: &'static [ResponseCode] = &[$(ResponseCode::$name,)*];

            pub fn as_str(&self) -> &str {
                match self {
                    $(ResponseCode::$name => stringify!($name),)*
                    ResponseCode::Other(s) => s,
                }
            }

            pub fn parse(s: &str) -> Self {
                // Faults prefix the code with a namespace prefix (`a:ErrorServerBusy`).
                let s = s.trim();
                let s = s.rsplit(':').next().unwrap_or(s);
                match s {
                    $(stringify!($name) => ResponseCode::$name,)*
                    other => ResponseCode::Other(other.to_owned()),
                }
            }
        }
    };
}

response_codes!(
    NoError,
    ErrorServerBusy,
    ErrorInvalidSyncStateData,
    ErrorItemNotFound,
    ErrorFolderNotFound,
    ErrorAccessDenied,
    ErrorImpersonateUserDenied,
    ErrorImpersonationFailed,
    ErrorNonExistentMailbox,
    ErrorSchemaValidation,
    ErrorInvalidServerVersion,
    ErrorIncorrectSchemaVersion,
    ErrorTooManyObjectsOpened,
    ErrorExceededConnectionCount,
    ErrorExceededSubscriptionCount,
    ErrorInvalidSubscription,
    ErrorSubscriptionNotFound,
    ErrorExpiredSubscription,
    ErrorInvalidWatermark,
    ErrorReadEventsFailed,
    ErrorMailboxMoveInProgress,
    ErrorMailboxStoreUnavailable,
    ErrorInvalidIdMalformed,
    ErrorInvalidIdEmpty,
    ErrorInvalidChangeKey,
    ErrorIrresolvableConflict,
    ErrorChangeKeyRequiredForWriteOperations,
    ErrorInternalServerError,
    ErrorInternalServerTransientError,
    ErrorTimeoutExpired,
    ErrorConnectionFailed,
    ErrorInvalidRequest,
    ErrorInvalidArgument,
    ErrorInvalidOperation,
    ErrorInvalidPropertyRequest,
    ErrorInvalidPropertySet,
    ErrorInvalidExtendedProperty,
    ErrorInvalidExtendedPropertyValue,
    ErrorCalendarIsCancelledForAccept,
    ErrorCalendarIsCancelledForDecline,
    ErrorCalendarIsCancelledForTentative,
    ErrorCalendarIsOrganizerForAccept,
    ErrorCalendarIsOrganizerForDecline,
    ErrorCalendarIsOrganizerForTentative,
    ErrorCalendarMeetingRequestIsOutOfDate,
    ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange,
    ErrorCalendarInvalidRecurrence,
    ErrorCalendarInvalidTimeZone,
    ErrorCalendarDurationIsTooLong,
    ErrorCalendarEndDateIsEarlierThanStartDate,
    ErrorSendAsDenied,
    ErrorQuotaExceeded,
    ErrorMessageSizeExceeded,
    ErrorNameResolutionNoResults,
    ErrorNameResolutionMultipleResults,
    ErrorFolderExists,
    ErrorParentFolderNotFound,
    ErrorMissingEmailAddress,
    ErrorInvalidSmtpAddress,
    ErrorNoRespondingCASInDestinationSite,
    ErrorProxyRequestNotAllowed,
    ErrorCrossSiteRequest,
    ErrorInvalidExchangeImpersonationHeaderData,
    ErrorInvalidSid,
    ErrorNotEnoughMemory,
    ErrorBatchProcessingStopped,
    ErrorCorruptData,
    ErrorInvalidPullSubscriptionId,
    ErrorInvalidPushSubscriptionUrl,
    ErrorInvalidSubscriptionRequest,
    ErrorMissedNotificationEvents,
    ErrorProxiedSubscriptionCallFailure,
    ErrorSubscriptionAccessDenied,
    ErrorSubscriptionDelegateAccessNotSupported,
    ErrorSubscriptionUnsubscribed,
    ErrorMailRecipientNotFound,
    ErrorFreeBusyGenerationFailed,
    ErrorNoFreeBusyAccess,
    ErrorInvalidRecipients,
    ErrorInvalidTimeInterval,
);

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// The enum comes out of a macro, where `#[default]` cannot mark one variant.
#[allow(clippy::derivable_impls)]
impl Default for ResponseCode {
    fn default() -> Self {
        ResponseCode::NoError
    }
}

impl ResponseCode {
    /// Codes that say "try again later" rather than "this request is wrong".
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ResponseCode::ErrorServerBusy
                | ResponseCode::ErrorTooManyObjectsOpened
                | ResponseCode::ErrorExceededConnectionCount
                | ResponseCode::ErrorMailboxMoveInProgress
                | ResponseCode::ErrorMailboxStoreUnavailable
                | ResponseCode::ErrorInternalServerTransientError
                | ResponseCode::ErrorTimeoutExpired
                | ResponseCode::ErrorConnectionFailed
                | ResponseCode::ErrorNoRespondingCASInDestinationSite
        )
    }
}

/// Everything the EWS layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EwsError {
    /// The request never got an HTTP answer (DNS, connect, TLS, timeout).
    #[error("EWS transport: {0}")]
    Transport(String),
    /// The connection failed after the request may have reached the server
    /// (timeout, reset mid-response): the outcome is unknown, so only
    /// idempotent operations are retried automatically.
    #[error("EWS request interrupted: {0}")]
    Interrupted(String),
    /// An HTTP status that carried no SOAP envelope we could read.
    #[error("EWS HTTP status {status}")]
    Http { status: u16, body_excerpt: String },
    /// Authentication was refused (401 after a complete handshake).
    #[error("EWS authentication refused: {0}")]
    Unauthorized(String),
    /// A SOAP fault (whole-request failure: schema, throttling, rights).
    #[error("EWS SOAP fault {code}: {message}")]
    Fault {
        code: ResponseCode,
        fault_code: String,
        message: String,
        /// From `MessageXml/Value[@Name="BackOffMilliseconds"]` on ErrorServerBusy.
        back_off: Option<Duration>,
    },
    /// A ResponseMessage with ResponseClass="Error".
    #[error("EWS response {code}: {message}")]
    Response {
        code: ResponseCode,
        message: String,
        back_off: Option<Duration>,
    },
    /// The server's answer is not the EWS we know (bad XML, missing parts).
    #[error("EWS malformed response: {0}")]
    Malformed(String),
    /// The answer is larger than the configured cap.
    #[error("EWS response larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The request cannot be expressed for this server version.
    #[error("EWS {operation} is not supported by {version}")]
    Unsupported {
        operation: &'static str,
        version: &'static str,
    },
    /// Local setup is wrong (bad URL, unreadable CA file, bad credentials shape).
    #[error("EWS configuration: {0}")]
    Config(String),
}

impl EwsError {
    pub fn malformed(msg: impl Into<String>) -> Self {
        EwsError::Malformed(msg.into())
    }

    /// The EWS response code, for faults and error responses.
    pub fn response_code(&self) -> Option<&ResponseCode> {
        match self {
            EwsError::Fault { code, .. } | EwsError::Response { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server's requested pause, when it named one.
    pub fn back_off(&self) -> Option<Duration> {
        match self {
            EwsError::Fault { back_off, .. } | EwsError::Response { back_off, .. } => *back_off,
            _ => None,
        }
    }

    /// Whether repeating the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EwsError::Transport(_) | EwsError::Interrupted(_) => true,
            EwsError::Http { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            EwsError::Fault { code, .. } | EwsError::Response { code, .. } => code.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named code exists in some version's ResponseCodeType, so a
    /// simulator that writes it stays schema-valid.
    #[test]
    fn every_code_is_in_the_schemas() {
        let dir = crate::ews::testkit::schemas_dir();
        let mut text = String::new();
        for set in ["exchange2007_sp1", "exchange-online-2016"] {
            let path = dir.join(set).join("messages.xsd");
            text.push_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        }
        let missing: Vec<&str> = ResponseCode::ALL
            .iter()
            .map(ResponseCode::as_str)
            .filter(|c| !text.contains(&format!("\"{c}\"")))
            .collect();
        assert!(missing.is_empty(), "not in any schema: {missing:?}");
    }

    #[test]
    fn codes_round_trip_and_strip_prefixes() {
        assert_eq!(ResponseCode::parse("a:ErrorServerBusy"), ResponseCode::ErrorServerBusy);
        assert_eq!(
            ResponseCode::parse("ErrorSomethingNew"),
            ResponseCode::Other("ErrorSomethingNew".into())
        );
        assert_eq!(
            ResponseCode::ErrorInvalidSyncStateData.as_str(),
            "ErrorInvalidSyncStateData"
        );
    }
}
