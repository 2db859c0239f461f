import { ApiError } from "../api/client";

/** An error as the API explained it (its `detail`); a 503 as a banner saying when to retry. */
export function ProblemMessage({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  if (!error) return null;
  const apiError = error instanceof ApiError ? error : null;
  const message = error instanceof Error ? error.message : String(error);
  if (apiError?.status === 503) {
    const wait = apiError.retryAfter;
    return (
      <div className="banner banner--retry" role="alert">
        <p>
          {message} {wait ? `Try again in ${wait} second${wait === 1 ? "" : "s"}.` : "Try again shortly."}
        </p>
        {onRetry && (
          <button type="button" onClick={onRetry}>
            Retry
          </button>
        )}
      </div>
    );
  }
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}
