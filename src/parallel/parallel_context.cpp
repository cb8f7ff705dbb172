#include "bignlp/parallel/parallel_context.h"

#include "bignlp/core/check.h"

namespace bignlp::parallel {

namespace {
comm::Communicator* if_multi(const std::unique_ptr<comm::Communicator>& c) {
  return c != nullptr && c->size() > 1 ? c.get() : nullptr;
}
}  // namespace

ParallelContext ParallelContext::from(const comm::ParallelGroups& groups, const ParallelOptions& options) {
  ParallelContext ctx;
  ctx.grid = groups.grid;
  ctx.world = groups.world != nullptr && groups.world->size() > 1 ? groups.world : nullptr;
  ctx.tp = if_multi(groups.tp);
  ctx.pp = if_multi(groups.pp);
  ctx.pp_backward = if_multi(groups.pp_backward);
  ctx.dp = if_multi(groups.dp);
  ctx.model_parallel = if_multi(groups.model_parallel);
  ctx.embedding = if_multi(groups.embedding);
  ctx.options = options;
  if (ctx.options.sequence_parallel && ctx.tp == nullptr) ctx.options.sequence_parallel = false;  // NeMo: off at TP 1
  if (ctx.options.sequence_parallel) ctx.options.async_tp_allreduce = false;
  BIGNLP_CHECK(ctx.options.virtual_pipeline_size >= 1, "virtual pipeline size {}", ctx.options.virtual_pipeline_size);
  return ctx;
}

}  // namespace bignlp::parallel
