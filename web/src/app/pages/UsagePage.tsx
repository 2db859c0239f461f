import { Link } from "react-router";
import { call } from "../../api/client";
import { ProblemMessage } from "../../components/ProblemMessage";
import { UsageMeter } from "../../components/UsageMeter";
import { useApi, useUser } from "../../context";
import { TIER_NAMES } from "../../format";
import { useLoad } from "../../hooks/useLoad";

export function UsagePage() {
  const api = useApi();
  const user = useUser();
  const limits = useLoad(user ? `limits:${user.id}` : null, () =>
    call(api.GET("/api/tiers/limits/{user_id}", { params: { path: { user_id: "me" } } })),
  );
  return (
    <section>
      <h1>Your usage</h1>
      <ProblemMessage error={limits.error} onRetry={() => void limits.reload()} />
      {limits.loading && !limits.data && <p aria-live="polite">Loading your usage…</p>}
      {limits.data && (
        <>
          <p>
            Plan: <strong>{TIER_NAMES[limits.data.tier]}</strong> (<Link to="/pricing">change</Link>)
          </p>
          <UsageMeter limits={limits.data} />
        </>
      )}
    </section>
  );
}
