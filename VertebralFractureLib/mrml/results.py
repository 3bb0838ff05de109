"""The scene nodes of one result, and the result stored in the scene so a saved scene stays editable.

A :class:`ResultNodes` groups the nodes that show one :class:`SpineResult`. The result itself (with
every vertebra's edit history and scores) is kept as the project's annotation JSON in a hidden-role
``vtkMRMLTextNode`` (attribute ``VertebralFracture.Role = result``) that references the other nodes
by role. Saving the scene (``.mrb``) saves that node with the rest; :func:`find_results` rebuilds the
``ResultNodes`` of a loaded scene from it, folding in any keypoint moved while nobody watched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..io.annotations import annotation_document, parse_annotations
from ..schema import SpineResult
from .history import EditHistory
from .markups import ROLE_ATTRIBUTE

RESULT_ROLE = "result"
#: ResultNodes attribute -> node reference role of the result node.
REFERENCE_ROLES = (
    "volume",
    "keypoints",
    "centroids",
    "table",
    "segmentation",
    "summary",
    "colors",
    "straightened",
)
COLOR_BY_ATTRIBUTE = "VertebralFracture.ColorBy"
NAME_ATTRIBUTE = "VertebralFracture.Name"
COLOR_MODES = ("grade", "abnormality")


@dataclass
class ResultNodes:
    """The scene nodes showing one result, and the result itself.

    Attributes:
        result: the current SpineResult (LPS mm, or frame pixel for a radiograph), history included.
        volume: the input CT volume node (or the radiograph's one-slice volume), when known.
        keypoints: markups node, six points per vertebra.
        centroids: markups node, one point per vertebra.
        table: the "Genant" table node (patient summary in its attributes).
        segmentation: vertebral-body segmentation node coloured by grade or abnormality, or None.
        summary: text node with the patient summary.
        colors: colour table node of the legend (grades or abnormality ramp).
        straightened: the straightened mid-sagittal image (volume node), or None.
        store: text node holding the result as annotation JSON (the anchor of the others).
        folder: subject hierarchy folder item holding the nodes (0 when none).
        name: prefix of the node names (the input volume's name).
        color_by: ``"grade"`` or ``"abnormality"``.
        warnings: messages for the user from the analysis.
        last_error: the last problem met while folding back an edit ("" when none).
        live: the result during a drag (measures of the moving points), else None.
        history: undo / redo stacks of the committed edits (:mod:`.history`).
        current: the level the reader is looking at in the review queue ("" when none).

    """

    result: SpineResult
    volume: Any = None
    keypoints: Any = None
    centroids: Any = None
    table: Any = None
    segmentation: Any = None
    summary: Any = None
    colors: Any = None
    straightened: Any = None
    store: Any = None
    folder: int = 0
    name: str = ""
    color_by: str = "grade"
    warnings: List[str] = field(default_factory=list)
    last_error: str = ""
    live: Optional[SpineResult] = None
    observers: List[Any] = field(default_factory=list, repr=False)
    busy: bool = field(default=False, repr=False)
    history: EditHistory = field(default_factory=EditHistory, repr=False)
    current: str = ""

    def scene_nodes(self) -> Dict[str, Any]:
        """Role -> node for every node that exists (the input volume excluded)."""
        roles = [r for r in REFERENCE_ROLES if r != "volume"] + ["store"]
        return {role: getattr(self, role) for role in roles if getattr(self, role) is not None}

    @property
    def shown(self) -> SpineResult:
        """The result the table shows: the live one during a drag, else the committed one."""
        return self.live if self.live is not None else self.result


def write_store(nodes: ResultNodes, scene) -> Any:
    """Create or refresh the result node: annotation JSON, colour mode and references to the others."""
    store = nodes.store
    if store is None:
        store = scene.AddNewNodeByClass("vtkMRMLTextNode", scene.GenerateUniqueName(f"{nodes.name} result".strip()))
        store.SetAttribute(ROLE_ATTRIBUTE, RESULT_ROLE)
        nodes.store = store
    was_modifying = store.StartModify()
    store.SetText(json.dumps(annotation_document(nodes.result), allow_nan=False))
    store.SetAttribute(COLOR_BY_ATTRIBUTE, nodes.color_by)
    store.SetAttribute(NAME_ATTRIBUTE, nodes.name)
    for role in REFERENCE_ROLES:
        node = getattr(nodes, role)
        store.SetNodeReferenceID(role, node.GetID() if node is not None else None)
    store.EndModify(was_modifying)
    return store


def result_of_store(store) -> SpineResult:
    """The result a result node holds.

    Raises:
        AnnotationError: if its text is not an annotation document.

    """
    return parse_annotations(json.loads(store.GetText() or "{}"), source=store.GetName())


def result_stores(scene) -> List[Any]:
    """The result nodes of a scene, in scene order."""
    stores = []
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLTextNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLTextNode")
        if node.GetAttribute(ROLE_ATTRIBUTE) == RESULT_ROLE:
            stores.append(node)
    return stores


def nodes_of_store(store) -> ResultNodes:
    """The :class:`ResultNodes` a result node references; edits made to its keypoints are folded in."""
    from .markups import result_from_markups_nodes

    stored = result_of_store(store)
    nodes = ResultNodes(result=stored, store=store)
    for role in REFERENCE_ROLES:
        setattr(nodes, role, store.GetNodeReference(role))
    nodes.color_by = store.GetAttribute(COLOR_BY_ATTRIBUTE) or "grade"
    nodes.name = store.GetAttribute(NAME_ATTRIBUTE) or ""
    if nodes.keypoints is not None and nodes.keypoints.GetNumberOfControlPoints():
        nodes.result = result_from_markups_nodes(nodes.keypoints, nodes.centroids, template=stored)
        nodes.result.warnings = list(stored.warnings)
    scene = store.GetScene()
    shn = scene.GetSubjectHierarchyNode() if scene is not None else None
    if shn is not None and nodes.table is not None:
        item = shn.GetItemByDataNode(nodes.table)
        nodes.folder = shn.GetItemParent(item) if item else 0
    return nodes


def find_results(scene) -> List[ResultNodes]:
    """Every result shown in the scene (e.g. after loading a ``.mrb``), oldest first."""
    return [nodes_of_store(store) for store in result_stores(scene)]
