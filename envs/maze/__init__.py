"""The maze family: the maze env, its levels, generators, editor and named held-out levels."""

from jaxrl_suite.envs.maze.editor import (
    MazeEditor,
    MazeEditorParams,
    MazeEditorState,
    make_editor,
)
from jaxrl_suite.envs.maze.generators import (
    empty_rooms_level,
    mutate_level,
    perfect_maze_level,
    random_walls_level,
)
from jaxrl_suite.envs.maze.level import (
    Level,
    distance_to_goal,
    is_solvable,
    is_valid_level,
    level_from_text,
    level_to_text,
    optimal_num_steps,
    optimal_return,
    pad_level,
    shortest_path_length,
    stack_levels,
)
from jaxrl_suite.envs.maze.maze import Maze, MazeParams, MazeState
from jaxrl_suite.envs.maze.named import load_level, load_levels, named_level_names
from jaxrl_suite.envs.maze.render import (
    render_level,
    render_level_grid,
    render_state,
    rollout_frames,
    save_gif,
    save_png,
)

__all__ = [
    "Level",
    "Maze",
    "MazeEditor",
    "MazeEditorParams",
    "MazeEditorState",
    "MazeParams",
    "MazeState",
    "distance_to_goal",
    "empty_rooms_level",
    "is_solvable",
    "is_valid_level",
    "level_from_text",
    "level_to_text",
    "load_level",
    "load_levels",
    "make_editor",
    "mutate_level",
    "named_level_names",
    "optimal_num_steps",
    "optimal_return",
    "pad_level",
    "perfect_maze_level",
    "random_walls_level",
    "render_level",
    "render_level_grid",
    "render_state",
    "rollout_frames",
    "save_gif",
    "save_png",
    "shortest_path_length",
    "stack_levels",
]
