import { useNavigate } from "react-router";
import { call } from "../../api/client";
import { GenerateForm } from "../../components/GenerateForm";
import { ProblemMessage } from "../../components/ProblemMessage";
import { UsageMeter } from "../../components/UsageMeter";
import { useApi, useUser } from "../../context";
import { useLoad } from "../../hooks/useLoad";

export function GeneratePage() {
  const api = useApi();
  const user = useUser();
  const navigate = useNavigate();
  const limits = useLoad(user ? `limits:${user.id}` : null, () =>
    call(api.GET("/api/tiers/limits/{user_id}", { params: { path: { user_id: "me" } } })),
  );
  const tiers = useLoad("tiers", () => call(api.GET("/api/tiers")).then((answer) => answer.tiers));
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
