export {
  RewardsClient,
  newRequestId,
  ref,
  type RewardsClientOptions,
  type TlsOptions,
} from "./client.js";
export {
  Code,
  DOMAIN,
  RewardsError,
  codeName,
  fromConnectError,
  fromStatus,
  type FieldViolation,
  type Reason,
} from "./errors.js";
export {
  DEFAULT_RETRY_POLICY,
  RetryBudget,
  type RetryEvent,
  type RetryPolicy,
} from "./retry.js";
// The generated messages, enums and service descriptors of rewards.v1.
export * from "./gen/rewards/v1/common_pb.js";
export * from "./gen/rewards/v1/catalog_pb.js";
export * from "./gen/rewards/v1/issuance_pb.js";
export * from "./gen/rewards/v1/participants_pb.js";
