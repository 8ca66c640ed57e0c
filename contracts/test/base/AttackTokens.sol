// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC1363} from "@openzeppelin/contracts/token/ERC20/extensions/ERC1363.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";

/// @notice A plain OpenZeppelin ERC-20, mintable by anyone.
contract PlainToken is ERC20("Plain", "PLN") {
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice OpenZeppelin's ERC-721, mintable by anyone.
contract TestNft is ERC721("Test NFT", "TNFT") {
    function mint(address to, uint256 id) external {
        _mint(to, id);
    }
}

/// @notice OpenZeppelin's ERC-1155, mintable by anyone.
contract TestMultiToken is ERC1155("") {
    function mint(address to, uint256 id, uint256 amount) external {
        _mint(to, id, amount, "");
    }
}

/// @notice OpenZeppelin's ERC-1363 (`transferAndCall`) on an ERC-20.
contract TestPayableToken is ERC1363 {
    constructor() ERC20("Payable", "P1363") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice An ERC-20 with its own `multicall` (OpenZeppelin `Multicall`): a `transfer` hidden in
///         a batch the backstop cannot see into.
contract TestMulticallToken is ERC20("Multicall", "MC"), Multicall {
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice Stands in for ERC-777 `send`/`authorizeOperator` and DAI's `push`/`move`: moves the
///         caller's balance on any of those selectors, as those tokens do.
contract TestLegacyToken is ERC20("Legacy", "LEG") {
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev ERC-777 `send(address,uint256,bytes)`.
    function send(address to, uint256 amount, bytes calldata) external {
        _transfer(msg.sender, to, amount);
    }

    /// @dev ERC-777 `authorizeOperator(address)`: the operator may move everything.
    function authorizeOperator(address operator) external {
        _approve(msg.sender, operator, type(uint256).max);
    }

    /// @dev DAI `push(address,uint256)`.
    function push(address to, uint256 amount) external {
        _transfer(msg.sender, to, amount);
    }

    /// @dev DAI `move(address,address,uint256)`.
    function move(address from, address to, uint256 amount) external {
        if (from != msg.sender) _spendAllowance(from, msg.sender, amount);
        _transfer(from, to, amount);
    }
}
