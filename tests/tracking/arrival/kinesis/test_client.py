"""Which Kinesis failures are retried, and how the backoff grows."""

from botocore.exceptions import ClientError, EndpointConnectionError

from tracking.arrival.kinesis.client import Backoff, failure_kind, is_retryable


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetRecords")


def test_throttling_server_errors_and_broken_connections_are_retried():
    assert is_retryable(_client_error("ProvisionedThroughputExceededException", 400))
    assert is_retryable(_client_error("LimitExceededException", 400))
    assert is_retryable(_client_error("SomethingNew", 503))
    assert is_retryable(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert failure_kind(_client_error("ProvisionedThroughputExceededException", 400)) == "throttled"
    assert failure_kind(_client_error("InternalFailure", 500)) == "server_error"


def test_client_mistakes_are_not_retried():
    assert not is_retryable(_client_error("ResourceNotFoundException", 400))
    assert not is_retryable(_client_error("ExpiredIteratorException", 400))
    assert not is_retryable(ValueError("a bug"))


def test_backoff_grows_up_to_its_cap_and_never_waits_zero():
    backoff = Backoff(base=0.1, cap=1.0)
    delays = [backoff.next_delay() for _ in range(200)]

    assert all(0.025 <= d <= 1.0 for d in delays)
    assert max(delays[:1]) <= 0.1
    assert max(delays[50:]) > 0.5  # full jitter over [0, 1.0] reaches the upper half
    backoff.reset()
    assert backoff.next_delay() <= 0.1
