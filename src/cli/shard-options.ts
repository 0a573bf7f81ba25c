import { UsageError } from "../errors.js";
import {
  checkedShard,
  parseShard,
  SHARD_KEYS,
  ShardError,
  type Shard,
  type ShardKey,
} from "../plan/index.js";
import { stringOption, type OptionSpecs, type ParsedValues } from "./command.js";
import type { CliIO } from "./io.js";

/** The variable a Kubernetes Indexed Job sets in each pod: its 0-based completion index. */
export const JOB_COMPLETION_INDEX_VARIABLE = "JOB_COMPLETION_INDEX";

/** `--shard I/N` and `--shards N` (docs/sharding.md). */
export const shardOptionSpecs = {
  shard: {
    type: "string",
    valueName: "I/N",
    description: "Do only shard I (0-based) of N, split by destination repository (docs/sharding.md)",
  },
  shards: {
    type: "string",
    valueName: "N",
    description: `Do only shard $${JOB_COMPLETION_INDEX_VARIABLE} of N (a Kubernetes Indexed Job)`,
  },
  "shard-by": {
    type: "string",
    valueName: "KEY",
    description: "repository (default: even shards) or image (all mirrors of an image in one shard)",
  },
} as const satisfies OptionSpecs;

/** A shard and the key its repositories are hashed by. */
export interface ShardSelection extends Shard {
  readonly by: ShardKey;
}

/** The shard named by the flags, or undefined for the whole promotion. */
export function shardFromOptions(values: ParsedValues, io: CliIO): ShardSelection | undefined {
  const by = stringOption(values, "shard-by", SHARD_KEYS);
  const shard = selectedShard(values, io);
  if (!shard) {
    if (by !== undefined) throw new UsageError("--shard-by goes with --shard I/N or --shards N");
    return undefined;
  }
  return { ...shard, by: by ?? "repository" };
}

function selectedShard(values: ParsedValues, io: CliIO): Shard | undefined {
  const shard = stringOption(values, "shard");
  const shards = stringOption(values, "shards");
  try {
    if (shard !== undefined && shards !== undefined) {
      throw new UsageError("give either --shard I/N or --shards N, not both");
    }
    if (shard !== undefined) return parseShard(shard);
    if (shards === undefined) return undefined;
    if (!/^\d{1,6}$/.test(shards))
      throw new ShardError(`--shards must be a whole number, not ${JSON.stringify(shards)}`);
    const indexText = io.env[JOB_COMPLETION_INDEX_VARIABLE];
    if (indexText === undefined || indexText === "") {
      throw new UsageError(
        `--shards ${shards} reads this worker's index from ${JOB_COMPLETION_INDEX_VARIABLE}, which is not set (use --shard I/N outside an Indexed Job)`,
      );
    }
    if (!/^\d{1,6}$/.test(indexText)) {
      throw new UsageError(
        `${JOB_COMPLETION_INDEX_VARIABLE} must be a whole number, not ${JSON.stringify(indexText)}`,
      );
    }
    return checkedShard(Number(indexText), Number(shards));
  } catch (error) {
    if (error instanceof ShardError) {
      throw new UsageError(`${shard !== undefined ? "--shard" : "--shards"}: ${error.message}`);
    }
    throw error;
  }
}
