import { useNavigate } from "react-router";
import { GenerateForm } from "../../components/GenerateForm";
import { ProblemMessage } from "../../components/ProblemMessage";
import { UsageMeter } from "../../components/UsageMeter";
import { useLimits, useTiers } from "../../hooks/useAccount";

export function GeneratePage() {
  const navigate = useNavigate();
  const limits = useLimits();
  const tiers = useTiers();
  return (
    <section>
      <h1>Generate a song</h1>
      <ProblemMessage error={limits.error ?? tiers.error} onRetry={() => void limits.reload()} />
      {(!limits.data || !tiers.data) && !limits.error && <p aria-live="polite">Loading…</p>}
      {limits.data && tiers.data && (
        <>
          <GenerateForm
            limits={limits.data}
            tiers={tiers.data}
            onUsageChange={() => void limits.reload()}
            onUpgrade={() => void navigate("/pricing")}
          />
          <UsageMeter limits={limits.data} />
        </>
      )}
    </section>
  );
}
