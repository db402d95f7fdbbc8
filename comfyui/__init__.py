"""inverse-dvs nodes for ComfyUI (V3 schema): re-render a video along a new camera path with CogVideoX, no training.

Install: link or copy this folder into ComfyUI's `custom_nodes/` and install inverse-dvs into ComfyUI's Python
(`pip install -e /path/to/inverse-dvs`); README → ComfyUI.
"""

from comfy_api.latest import ComfyExtension, io

from .nodes import NODES


class InverseDVSExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> InverseDVSExtension:
    return InverseDVSExtension()
