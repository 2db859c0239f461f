// What every component reads: the API client and the sign-in session, given once by the host app.
import { createContext, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { Api } from "./api/client";
import type { Session, User } from "./auth/session";

interface Son1k {
  api: Api;
  session: Session;
}

const Context = createContext<Son1k | null>(null);

/** Gives the components below it the API client and the session. */
export function Son1kProvider({ api, session, children }: Son1k & { children: ReactNode }) {
  return <Context.Provider value={{ api, session }}>{children}</Context.Provider>;
}

function useSon1k(): Son1k {
  const value = useContext(Context);
  if (!value) throw new Error("Son1k components need a <Son1kProvider> above them.");
  return value;
}

export function useApi(): Api {
  return useSon1k().api;
}

export function useSession(): Session {
  return useSon1k().session;
}

/** The signed-in user (`null` when signed out); re-renders on sign-in and sign-out. */
export function useUser(): User | null {
  const session = useSession();
  return useSyncExternalStore(
    (listener) => session.subscribe(listener),
    () => session.user(),
  );
}
