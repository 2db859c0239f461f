import { call } from "../../api/client";
import { CommunityPool } from "../../components/CommunityPool";
import { useApi, useUser } from "../../context";
import { useLoad } from "../../hooks/useLoad";

export function PoolPage({ onSignIn }: { onSignIn: () => void }) {
  const api = useApi();
  const user = useUser();
  const limits = useLoad(user ? `limits:${user.id}` : null, () =>
    call(api.GET("/api/tiers/limits/{user_id}", { params: { path: { user_id: "me" } } })),
  );
  return (
    <section>
      <h1>Listen to the community</h1>
      <p>Songs paid members shared. Free members can claim 3 a day to keep.</p>
      <CommunityPool canClaim={limits.data?.tier === "FREE"} onSignIn={onSignIn} />
    </section>
  );
}
