"""One item's transformer split over several processes (`run.context_parallel: {ulysses: U, ring: R}`), through
diffusers' context parallelism.

The processes of a launch (`run.gpus`, `accelerate launch`) form groups of U·R consecutive ranks. Each group takes
items as one process did before (`workqueue`); in a group, the first process (the leader) runs the stage — reads,
VAE, K-RNR, SLM, DDIM steps, every file and record — and each call of its transformer is sent to the others
(followers), which run nothing but that call (`serve`). So everything outside the transformer is computed once, by
the leader, and the followers cannot drift from it.

Inside the transformer, diffusers' Ulysses (all-to-all over heads) and ring attention (key/value blocks passed
around) run in `DispatchAttnProcessor` (`ModelMixin.enable_parallelism`). The sequence is split here, not by a
diffusers plan, because CogVideoX attends over text and video tokens together: the joint sequence [text; video] is
cut into equal parts at the first block (the first part holds the text tokens; a block gives each part's text and
video tokens their own modulation, as it does unsplit), and joined again after the last block, so the final norms
and `proj_out` see the whole video. Rotary embeddings cover the video tokens only: they are extended over the text
tokens with the identity (cos 1, sin 0, exact) and cut the same way. Text tokens are never repeated on every rank:
under ring attention their keys would be counted once per rank.

The joint length (226 text tokens + video tokens) must divide by U·R and the heads by U: no padding, since a padded
key would need a mask that ring attention cannot carry. `token_problem` says so before anything runs.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from ..infra.device import end_process_group_at_exit
from ..infra.errors import ConfigError, UserError

# backends that return the log-sum-exp ring attention merges with (diffusers' templated ring attention)
RING_BACKENDS = ("_native_cudnn", "_native_flash", "flash")
CONTROL_TIMEOUT = timedelta(days=7)  # a follower waits for the leader's next call as long as the leader works


@dataclass(frozen=True)
class Group:
    """This process's context-parallel group (`join`)."""

    ulysses: int
    ring: int
    index: int  # which group: the items it takes are those a single process `index` of `count` would take
    count: int
    rank: int  # this process's rank in the launch
    leader_rank: int  # the group's first rank, the one that runs the stage
    control: Any  # gloo process group of the group: the leader's call headers (no device time-out)
    mesh: Any  # the group's ("ring", "ulysses") DeviceMesh
    devices: Any  # the process group of its flattened mesh (NCCL on GPUs): tensors, parts, attention

    @property
    def size(self) -> int:
        return self.ulysses * self.ring

    @property
    def leader(self) -> bool:
        return self.rank == self.leader_rank

    def record(self) -> dict[str, int]:
        """What meta.json says of it."""
        return {"ulysses": self.ulysses, "ring": self.ring, "processes": self.size}

    def end(self, code: int) -> None:
        """The leader's stage is over (exit code `code`): its followers return it from `serve`."""
        if self.leader:
            _send(self, ("end", code))


_JOINED: dict[tuple[int, int], Group] = {}


def degree_problem(ulysses: int, ring: int, processes: int) -> str | None:
    """Why `run.context_parallel` cannot run with `processes` processes (None: it can)."""
    d = ulysses * ring
    if d > 1 and (processes <= 1 or processes % d):
        how = ("one process" if processes <= 1 else f"{processes} processes")
        return (f"config key 'run.context_parallel' asks for {d} processes per item (ulysses {ulysses} × ring "
                f"{ring}), but the run has {how}. Give run.gpus a multiple of {d} GPUs (each group of {d} takes items "
                "as one process does), or lower the degrees.")
    return None


def token_problem(ulysses: int, ring: int, tokens: int, heads: int, where: str = "") -> str | None:
    """Why a transformer call of `tokens` joint tokens (text + video) and `heads` attention heads cannot be split
    (None: it can). Ulysses needs heads that divide by it; alone it takes any length (parts differ by one token at
    most: diffusers' `ulysses_anything`). Ring attention needs equal parts."""
    d = ulysses * ring
    if heads % ulysses == 0 and (ring <= 1 or tokens % d == 0):
        return None
    why = (f"{heads} attention heads do not divide by ulysses {ulysses}" if heads % ulysses
           else f"{tokens} text and video tokens do not divide into {d} equal parts")
    fits = [k for k in range(2, 17) if tokens % k == 0]
    at = f" for {where}" if where else ""
    return (f"config key 'run.context_parallel' (ulysses {ulysses}, ring {ring}) cannot split the transformer "
            f"call{at}: {why}. Ulysses takes a divisor of the {heads} heads, and alone any token count; ring needs "
            f"equal parts (it carries no padding mask), and these degrees divide the tokens: "
            f"{', '.join(map(str, fits)) or 'none up to 16'}. Change the degrees or camera.height/width.")


def attention_backend(ring: int, backend: str) -> str:
    """The attention backend context parallel runs for `run.attention_backend` `backend`: `auto` is native (torch's
    SDPA) for Ulysses alone, else PyTorch's flash kernel, which returns the log-sum-exp ring attention merges."""
    if backend != "auto":
        return backend
    return "native" if ring == 1 else "_native_flash"


def ring_problem(ring: int, backend: str) -> str | None:
    """Why ring attention cannot run on `backend` (None: it can, or ring is 1)."""
    if ring > 1 and backend not in RING_BACKENDS:
        return (f"config key 'run.context_parallel' has ring {ring}, and ring attention needs an attention backend "
                f"that returns the log-sum-exp; run.attention_backend is {backend!r}. Set it to one of "
                f"{', '.join(RING_BACKENDS)} (GPU kernels, bf16/fp16), or use ulysses only.")
    return None


def join(ulysses: int, ring: int) -> Group | None:
    """This process's group for the degrees (None when both are 1). Collective: every process of the launch calls
    it, in the same order, once per degree pair (later calls return the group). ConfigError when the launch does not
    fit the degrees."""
    if ulysses * ring <= 1:
        return None
    key = (ulysses, ring)
    if key in _JOINED:
        return _JOINED[key]
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if world > 1:
        end_process_group_at_exit()  # a launch that made its own default group (scripts/bench_cp.py)
    if (problem := degree_problem(ulysses, ring, world)) is not None:
        raise ConfigError(problem)
    d, rank = ulysses * ring, dist.get_rank()
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device_type, (world // d, ring, ulysses), mesh_dim_names=("group", "ring", "ulysses"))
    controls = [dist.new_group(list(range(g * d, (g + 1) * d)), backend="gloo", timeout=CONTROL_TIMEOUT)
                for g in range(world // d)]
    index = rank // d
    sub = mesh["ring", "ulysses"]
    group = Group(ulysses, ring, index, world // d, rank, index * d, controls[index], sub, sub._flatten().get_group())
    _JOINED[key] = group
    return group


def enable(transformer, group: Group, backend: str) -> str:
    """Split `transformer`'s calls over `group` with attention `backend` (`auto`: native for Ulysses alone, else
    PyTorch's flash kernel, which returns what ring attention needs). Its processors must be
    `attention.DispatchAttnProcessor` (`use_attention_backend`). Returns the backend it runs."""
    from diffusers import ContextParallelConfig
    from diffusers.hooks import HookRegistry

    from .attention import use_attention_backend

    backend = attention_backend(group.ring, backend)
    if (problem := ring_problem(group.ring, backend)) is not None:
        raise ConfigError(problem)
    use_attention_backend(transformer, backend)
    # Ulysses alone: diffusers' "anything" all-to-alls take parts of unequal length and heads that do not divide
    config = ContextParallelConfig(ulysses_degree=group.ulysses, ring_degree=group.ring, mesh=group.mesh,
                                   ulysses_anything=group.ring == 1)
    with _quiet(), _cpu_device_count():
        transformer.enable_parallelism(config=config, cp_plan={})  # our hooks below split the sequence
    state = _State(group)
    blocks = transformer.transformer_blocks
    HookRegistry.check_if_exists_or_initialize(transformer).register_hook(_Call(state), "inverse_dvs_cp_call")
    HookRegistry.check_if_exists_or_initialize(blocks[0]).register_hook(_Split(state), "inverse_dvs_cp_split")
    HookRegistry.check_if_exists_or_initialize(blocks[-1]).register_hook(_Gather(state), "inverse_dvs_cp_gather")
    return backend


def serve(group: Group, transformer_of, log: logging.Logger) -> int:
    """A follower's stage: run each transformer call its leader sends (loading the model on the first,
    `transformer_of()`), until the leader's stage ends; returns the leader's exit code. A call that fails here fails
    the same way in the leader, which reports it."""
    transformer = None
    while True:
        message = _receive(group)
        if message[0] == "end":
            return message[1]
        if transformer is None:
            transformer = transformer_of()
        kwargs = _unpack(group, message[1], next(transformer.parameters()).device)
        try:
            with torch.no_grad():
                transformer(**kwargs)
        except UserError:  # the leader raises the same, before any collective
            continue
        except Exception:
            log.exception("context parallel: process %d: a transformer call failed", group.rank)


# --- the hooks -----------------------------------------------------------------------------------------------------

@dataclass
class _State:
    group: Group
    text: int = 0  # text tokens of the call in progress
    sizes: tuple[int, ...] = ()  # joint tokens of each process's part, in rank order (as torch.tensor_split cuts)

    def cut(self, tokens: int) -> None:
        d = self.group.size
        self.sizes = tuple(tokens // d + (i < tokens % d) for i in range(d))

    @property
    def start(self) -> int:
        """Where this process's part of the joint sequence starts."""
        import torch.distributed as dist

        return sum(self.sizes[:dist.get_rank(self.group.devices)])

    @property
    def part(self) -> int:
        import torch.distributed as dist

        return self.sizes[dist.get_rank(self.group.devices)]

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This process's part of a joint sequence ([B, L, …], or [L, D] for rotary tables)."""
        return x.narrow(1 if x.dim() > 2 else 0, self.start, self.part)


def _hook_base():
    """diffusers' ModelHook (imported when the module is, which the model's loading has done already) holding the
    call's `_State`."""
    from diffusers.hooks import ModelHook

    class Hook(ModelHook):
        def __init__(self, state: _State):
            super().__init__()
            self.state = state

    return Hook


_Hook = _hook_base()


class _Call(_Hook):
    """On the transformer: the leader sends the call to its followers; every process checks that the call splits
    and cuts the rotary embeddings (extended over the text tokens by the identity) to its part."""

    def pre_forward(self, module, *args, **kwargs):
        st = self.state
        call = _bind(module, args, kwargs)
        cfg = module.config
        frames, _, height, width = call["hidden_states"].shape[1:]
        p, pt = cfg.patch_size, cfg.patch_size_t or 1
        text = call["encoder_hidden_states"].shape[1]
        tokens = text + -(-frames // pt) * (height // p) * (width // p)
        problem = token_problem(st.group.ulysses, st.group.ring, tokens, cfg.num_attention_heads,
                                f"a {frames}×{height}×{width} latent")
        if problem:
            raise UserError(problem)
        if st.group.leader:
            _send_call(st.group, call)
        st.text = text
        st.cut(tokens)
        rotary = call.get("image_rotary_emb")
        if rotary is not None:
            cos, sin = rotary
            call["image_rotary_emb"] = (st.shard(torch.cat([cos.new_ones(text, cos.shape[1]), cos])),
                                        st.shard(torch.cat([sin.new_zeros(text, sin.shape[1]), sin])))
        return (), call


class _Split(_Hook):
    """On the first block: this process's part of the joint sequence, as its text and video tokens."""

    def pre_forward(self, module, *args, **kwargs):
        st = self.state
        call = _bind(module, args, kwargs)
        part = st.shard(torch.cat([call["encoder_hidden_states"], call["hidden_states"]], dim=1))
        text = min(max(st.text - st.start, 0), st.part)
        call["encoder_hidden_states"], call["hidden_states"] = part[:, :text], part[:, text:]
        return (), call


class _Gather(_Hook):
    """On the last block: the whole joint sequence again on every process, split into video and text tokens."""

    def post_forward(self, module, output):
        import torch.distributed as dist

        hidden, encoder = output
        sizes, longest = self.state.sizes, max(self.state.sizes)
        part = torch.cat([encoder, hidden], dim=1)
        part = torch.nn.functional.pad(part, (0, 0, 0, longest - part.shape[1])).contiguous()  # equal all-gathers
        parts = [torch.empty_like(part) for _ in sizes]
        dist.all_gather(parts, part, group=self.state.group.devices)
        joint = torch.cat([p[:, :n] for p, n in zip(parts, sizes, strict=True)], dim=1)
        return joint[:, self.state.text:], joint[:, :self.state.text]


def _bind(module, args, kwargs) -> dict[str, Any]:
    """A module call's arguments by name (without `self`)."""
    bound = inspect.signature(type(module).forward).bind(module, *args, **kwargs)
    return {k: v for k, v in list(bound.arguments.items())[1:]}


# --- leader → followers ----------------------------------------------------------------------------------------------

def _send(group: Group, message) -> None:
    import torch.distributed as dist

    dist.broadcast_object_list([message], src=group.leader_rank, group=group.control)


def _receive(group: Group):
    import torch.distributed as dist

    box = [None]
    dist.broadcast_object_list(box, src=group.leader_rank, group=group.control)
    return box[0]


def _send_call(group: Group, call: dict[str, Any]) -> None:
    """A call to the followers: its header (tensors as (shape, dtype)) over the control group, then each tensor over
    the group's devices."""
    import torch.distributed as dist

    tensors: list[torch.Tensor] = []

    def spec(v):
        if isinstance(v, torch.Tensor):
            tensors.append(v.contiguous())
            return ("tensor", tuple(v.shape), v.dtype)
        if isinstance(v, (tuple, list)):
            return ("seq", type(v).__name__, [spec(x) for x in v])
        return ("value", v)

    header = {k: spec(v) for k, v in call.items()}
    _send(group, ("call", header))
    for t in tensors:
        dist.broadcast(t, src=group.leader_rank, group=group.devices)


def _unpack(group: Group, header: dict[str, Any], device: torch.device) -> dict[str, Any]:
    import torch.distributed as dist

    def value(s):
        if s[0] == "tensor":
            t = torch.empty(s[1], dtype=s[2], device=device)
            dist.broadcast(t, src=group.leader_rank, group=group.devices)
            return t
        if s[0] == "seq":
            items = [value(x) for x in s[2]]
            return tuple(items) if s[1] == "tuple" else items
        return s[1]

    return {k: value(s) for k, s in header.items()}


@contextlib.contextmanager
def _quiet():
    """diffusers' "experimental feature" warning on every enable_parallelism."""
    log = logging.getLogger("diffusers.models.modeling_utils")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _cpu_device_count():
    """diffusers' `_resolve_parallel_config` takes `rank % torch.accelerator.device_count()`, a division by zero on a
    machine without accelerators (its device is unused once a mesh is given): count one there."""
    if torch.accelerator.device_count() > 0:
        yield
        return
    from unittest import mock

    with mock.patch.object(torch.accelerator, "device_count", lambda: 1):
        yield
