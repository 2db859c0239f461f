import { call, type Limits, type Tier } from "../api/client";
import { useApi, useUser } from "../context";
import { useLoad, type Loaded } from "./useLoad";

/** The signed-in user's limits now (`GET /api/tiers/limits/me`); nothing while signed out. */
export function useLimits(): Loaded<Limits> {
  const api = useApi();
  const user = useUser();
  return useLoad(user ? `limits:${user.id}` : null, () =>
    call(api.GET("/api/tiers/limits/{user_id}", { params: { path: { user_id: "me" } } })),
  );
}

/** The tier table (`GET /api/tiers`, public), in order FREE, CREATOR, PRO, STUDIO. */
export function useTiers(): Loaded<Tier[]> {
  const api = useApi();
  return useLoad("tiers", () => call(api.GET("/api/tiers")).then((answer) => answer.tiers));
}
