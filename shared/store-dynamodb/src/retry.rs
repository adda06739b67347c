//! The store's own retry policy. The SDK's retries are switched off (see `DynamoStore::with_client`)
//! so that one policy, in one place, decides: every attempt is counted against
//! `DynamoOptions::max_attempts`, and a failure that outlives them is returned, never dropped.
//!
//! Retried: throttling (`ProvisionedThroughputExceededException`, `ThrottlingException`,
//! `RequestLimitExceeded`), 5xx and 429 answers, timeouts, dropped connections and unreadable
//! answers. Not retried: anything else the service refuses (`ResourceNotFoundException`,
//! `ValidationException`, credentials), which retrying cannot fix.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure<'a> {
    /// The request could not be built: a bug or a bad configuration.
    Construction,
    /// No answer in time.
    Timeout,
    /// The request did not get through or the connection dropped; `user` when the HTTP client
    /// refused it as malformed.
    Dispatch { user: bool },
    /// An answer came but could not be read (cut short, garbled).
    Response,
    /// The service answered with an error.
    Service { code: Option<&'a str>, status: u16 },
}

/// Error codes DynamoDB uses for "slow down" and "try again".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
];

impl Failure<'_> {
    pub fn of<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Failure<'_>
    where
        R: HttpStatus,
    {
        match error {
            SdkError::ConstructionFailure(_) => Failure::Construction,
            SdkError::TimeoutError(_) => Failure::Timeout,
            SdkError::DispatchFailure(e) => Failure::Dispatch { user: e.is_user() },
            SdkError::ResponseError(_) => Failure::Response,
            SdkError::ServiceError(e) => Failure::Service {
                code: e.err().code(),
                status: e.raw().status_code(),
            },
            _ => Failure::Response,
        }
    }

    pub fn is_retryable(self) -> bool {
        match self {
            Failure::Construction => false,
            Failure::Timeout | Failure::Response => true,
            Failure::Dispatch { user } => !user,
            Failure::Service { code, status } => {
                status >= 500 || status == 429 || code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
            }
        }
    }

    /// A short name for logs and messages: the service's error code, or what kind of failure.
    pub fn describe(self) -> String {
        match self {
            Failure::Construction => "request construction failed".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Dispatch { .. } => "dispatch failure (connection refused or dropped)".into(),
            Failure::Response => "unreadable response".into(),
            Failure::Service { code, status } => format!("{} (HTTP {status})", code.unwrap_or("unknown error")),
        }
    }
}

/// Lets [`Failure::of`] read the status of the SDK's raw response (and tests use a stand-in).
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_dynamodb::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The longest single wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The wait after failed attempt `attempt` (1-based): `initial * 2^(attempt-1)`, capped at
/// [`MAX_BACKOFF`], then "equal jitter": half of it fixed, the other half random, so that
/// writers throttled together do not come back together.
pub fn backoff(initial: Duration, attempt: u32, random_unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let ceiling = initial.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    let half = ceiling / 2;
    half + half.mul_f64(random_unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

    use super::*;

    #[test]
    fn throttling_server_errors_timeouts_and_dropped_connections_are_retried() {
        let retried = [
            Failure::Service {
                code: Some("ProvisionedThroughputExceededException"),
                status: 400,
            },
            Failure::Service {
                code: Some("ThrottlingException"),
                status: 400,
            },
            Failure::Service {
                code: Some("RequestLimitExceeded"),
                status: 400,
            },
            Failure::Service {
                code: Some("InternalServerError"),
                status: 500,
            },
            Failure::Service {
                code: None,
                status: 500,
            },
            Failure::Service {
                code: None,
                status: 503,
            },
            Failure::Service {
                code: None,
                status: 429,
            },
            Failure::Timeout,
            Failure::Dispatch { user: false },
            Failure::Response,
        ];
        for failure in retried {
            assert!(failure.is_retryable(), "{failure:?}");
        }
    }

    #[test]
    fn refusals_retrying_cannot_fix_are_permanent() {
        let permanent = [
            Failure::Service {
                code: Some("ResourceNotFoundException"),
                status: 400,
            },
            Failure::Service {
                code: Some("ValidationException"),
                status: 400,
            },
            Failure::Service {
                code: Some("UnrecognizedClientException"),
                status: 400,
            },
            Failure::Service {
                code: Some("ConditionalCheckFailedException"),
                status: 400,
            },
            Failure::Service {
                code: None,
                status: 400,
            },
            Failure::Construction,
            Failure::Dispatch { user: true },
        ];
        for failure in permanent {
            assert!(!failure.is_retryable(), "{failure:?}");
        }
    }

    struct Status(u16);
    impl HttpStatus for Status {
        fn status_code(&self) -> u16 {
            self.0
        }
    }

    #[test]
    fn sdk_errors_are_classified_by_code_and_status() {
        let service = |code: &str, status| {
            SdkError::service_error(
                UpdateItemError::generic(ErrorMetadata::builder().code(code).build()),
                Status(status),
            )
        };
        let throttled = service("ProvisionedThroughputExceededException", 400);
        assert!(Failure::of(&throttled).is_retryable());
        let missing = service("ResourceNotFoundException", 400);
        assert_eq!(
            Failure::of(&missing),
            Failure::Service {
                code: Some("ResourceNotFoundException"),
                status: 400
            }
        );
        assert!(!Failure::of(&missing).is_retryable());

        let dropped: SdkError<UpdateItemError, Status> =
            SdkError::dispatch_failure(ConnectorError::io("connection reset".into()));
        assert!(Failure::of(&dropped).is_retryable());
        let timed_out: SdkError<UpdateItemError, Status> = SdkError::timeout_error("attempt timeout");
        assert!(Failure::of(&timed_out).is_retryable());
        let refused: SdkError<UpdateItemError, Status> = SdkError::construction_failure("bad input");
        assert!(!Failure::of(&refused).is_retryable());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let ms = Duration::from_millis;
        assert_eq!(backoff(ms(25), 1, 0.0), ms(12) + Duration::from_micros(500));
        assert_eq!(backoff(ms(25), 1, 1.0), ms(25));
        assert_eq!(backoff(ms(25), 2, 1.0), ms(50));
        assert_eq!(backoff(ms(25), 4, 1.0), ms(200));
        let jittered = backoff(ms(25), 3, 0.5);
        assert!(jittered > ms(50) && jittered < ms(100), "{jittered:?}");
        assert_eq!(backoff(ms(25), 30, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(ms(25), u32::MAX, 1.0), MAX_BACKOFF);
    }
}
