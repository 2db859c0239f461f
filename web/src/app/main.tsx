// The app: the package's components on pages, over the API named in /config.json.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { makeApi } from "../api/client";
import { Session } from "../auth/session";
import { Son1kProvider } from "../context";
import "../styles.css";
import { App } from "./App";

/** Where the API and the sign-in are: written next to the built app by whoever serves it. */
interface AppConfig {
  apiUrl: string;
  authUrl: string;
  clientId: string;
}

async function start() {
  const root = createRoot(document.getElementById("root")!);
  const config = (await (await fetch("/config.json", { cache: "no-store" })).json()) as AppConfig;
  const origin = window.location.origin;
  const session = new Session({
    authUrl: config.authUrl,
    clientId: config.clientId,
    redirectUri: `${origin}/callback`,
    logoutUri: `${origin}/`,
  });
  let signInError: string | null = null;
  if (window.location.pathname === "/callback") {
    try {
      const next = await session.complete(new URL(window.location.href));
      window.history.replaceState(null, "", next);
    } catch (err) {
      signInError = err instanceof Error ? err.message : String(err);
      window.history.replaceState(null, "", "/");
    }
  } else if (session.wasSignedIn()) {
    // A reload: the token was in memory only; the hosted UI's own session signs in again at once.
    await session.signIn(window.location.pathname + window.location.search);
    return;
  }
  const api = makeApi(config.apiUrl, session);
  root.render(
    <StrictMode>
      <Son1kProvider api={api} session={session}>
        <BrowserRouter>
          <App signInError={signInError} />
        </BrowserRouter>
      </Son1kProvider>
    </StrictMode>,
  );
}

void start();
