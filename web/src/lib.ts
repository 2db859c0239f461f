// The package's entry: the components, hooks and client another React app imports.
import "./styles.css";
export { ApiError, call, makeApi } from "./api/client";
export type {
  Alert,
  AlertSettings,
  Api,
  ChatReply,
  CreditBlock,
  CreditPack,
  Job,
  Limits,
  Lyrics,
  NewGeneration,
  PlanPreview,
  PoolItem,
  Problem,
  Quality,
  Schemas,
  Section,
  Suggestion,
  Tier,
  TierId,
  TokenSource,
} from "./api/client";
export type { paths, components } from "./api/schema";
export { Session } from "./auth/session";
export type { AuthConfig, User } from "./auth/session";
export { Son1kProvider, useApi, useSession, useUser } from "./context";
export { TierCard } from "./components/TierCard";
export type { TierCardProps } from "./components/TierCard";
export { PricingPage } from "./components/PricingPage";
export type { PricingPageProps } from "./components/PricingPage";
export { UsageMeter, projectedExhaustion } from "./components/UsageMeter";
export type { UsageMeterProps } from "./components/UsageMeter";
export { Paywall } from "./components/Paywall";
export type { PaywallProps } from "./components/Paywall";
export { GenerateForm } from "./components/GenerateForm";
export type { GenerateFormProps } from "./components/GenerateForm";
export { ProblemMessage } from "./components/ProblemMessage";
export { AlertSettingsForm } from "./components/AlertSettingsForm";
export { AlertsList } from "./components/AlertsList";
export { CreditPacks } from "./components/CreditPacks";
export type { CreditPacksProps } from "./components/CreditPacks";
export { PlanChangePreview } from "./components/PlanChangePreview";
export type { PlanChangePreviewProps } from "./components/PlanChangePreview";
export { CommunityPool } from "./components/CommunityPool";
export type { CommunityPoolProps, PoolSort } from "./components/CommunityPool";
export { LyricStudio } from "./components/LyricStudio";
export type { LyricStudioProps } from "./components/LyricStudio";
export { PixelChat, defaultPathFor } from "./components/PixelChat";
export type { PixelChatProps } from "./components/PixelChat";
export { useGeneration } from "./hooks/useGeneration";
export type { Generation, GenerationOptions, GenerationPhase, GenerationRequest, LimitReached } from "./hooks/useGeneration";
export { useLoad } from "./hooks/useLoad";
export { useLimits, useTiers } from "./hooks/useAccount";
export type { Loaded } from "./hooks/useLoad";
