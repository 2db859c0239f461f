import { Link, useSearchParams } from "react-router";
import { CreditPacks } from "../../components/CreditPacks";
import { ProblemMessage } from "../../components/ProblemMessage";
import { AlertSettingsForm } from "../../components/AlertSettingsForm";
import { AlertsList } from "../../components/AlertsList";
import { UsageMeter } from "../../components/UsageMeter";
import { TIER_NAMES } from "../../format";
import { useLimits } from "../../hooks/useAccount";

export function UsagePage() {
  const limits = useLimits();
  const [search] = useSearchParams();
  const returned = search.get("credits") === "success" ? search.get("session_id") : null;
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
      <CreditPacks returnedSession={returned} onCredited={() => void limits.reload()} />
      <AlertsList />
      <AlertSettingsForm />
    </section>
  );
}
