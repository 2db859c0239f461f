// The API client: openapi-fetch over the types generated from openapi.yaml (`schema.ts`, never
// edited by hand). Every call goes through `call`, which turns a problem+json answer into an
// `ApiError` carrying its `detail`, its code and `Retry-After`.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type Tier = Schemas["Tier"];
export type TierId = Schemas["TierId"];
export type Quality = Schemas["Quality"];
export type Limits = Schemas["Limits"];
export type Job = Schemas["Job"];
export type PoolItem = Schemas["PoolItem"];
export type Lyrics = Schemas["Lyrics"];
export type Section = Schemas["Section"];
export type AlertSettings = Schemas["AlertSettings"];
export type Alert = Schemas["Alert"];
export type CreditPack = Schemas["CreditPack"];
export type CreditBlock = Schemas["CreditBlock"];
export type Api = Client<paths>;

/** The JSON body of an operation's `status` answer. */
type Body<Operation, Status extends number> = Operation extends {
  responses: { [S in Status]: { content: { "application/json": infer B } } };
}
  ? B
  : never;
/** The JSON body an operation takes. */
type RequestOf<Operation> = Operation extends { requestBody?: { content: { "application/json": infer B } } }
  ? B
  : never;
export type ChatReply = Body<paths["/api/pixel/chat"]["post"], 200>;
export type NewGeneration = RequestOf<paths["/api/generations"]["post"]>;
export type Suggestion = ChatReply["suggestions"][number];
export type PlanPreview = Body<paths["/api/tiers/preview"]["get"], 200>;

/** A refused or failed request, as the API described it. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  /** Seconds to wait before trying again (`Retry-After`), when the answer said. */
  readonly retryAfter: number | null;

  constructor(status: number, problem: Problem | null, retryAfter: number | null) {
    super(
      problem?.detail ??
        (status === 0
          ? "The API could not be reached. Check your connection and try again."
          : `The request failed (HTTP ${status}).`),
    );
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  get code(): Problem["code"] | null {
    return this.problem?.code ?? null;
  }

  /** A member of the problem beyond the standard ones (`reset_at`, `limit`, `claims_left`, ...). */
  extra<T = unknown>(name: string): T | undefined {
    return (this.problem as Record<string, unknown> | null)?.[name] as T | undefined;
  }
}

/** What the client needs from the session: the current token, and what to do when it is refused. */
export interface TokenSource {
  token(): string | null;
  /** The API answered 401 to a request that carried a token: it expired or was revoked. */
  expired(): void;
}

/** A client of the API at `baseUrl`, sending the session's token. */
export function makeApi(baseUrl: string, session: TokenSource, fetchImpl?: typeof fetch): Api {
  const api = createClient<paths>({ baseUrl, ...(fetchImpl ? { fetch: fetchImpl } : {}) });
  const auth: Middleware = {
    onRequest({ request }) {
      const token = session.token();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    onResponse({ request, response }) {
      if (response.status === 401 && request.headers.has("Authorization")) session.expired();
      return response;
    },
  };
  api.use(auth);
  return api;
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The data of a successful answer; an `ApiError` otherwise (also for a network failure). */
export async function call<T>(pending: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await pending;
  } catch {
    throw new ApiError(0, null, null);
  }
  const { data, error, response } = answer;
  if (response.ok && error === undefined) return data as T;
  const retry = response.headers.get("Retry-After");
  const problem = isProblem(error) ? error : null;
  throw new ApiError(response.status, problem, retry === null ? null : Number(retry));
}

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "detail" in value && "code" in value;
}
